#include "bridge/record_headers.hpp"

#include <charconv>
#include <cstdlib>
#include <iterator>
#include <limits>

#include <fmt/format.h>

namespace shmbus::bridge {
namespace {

using Fields = std::vector<std::pair<std::string_view, std::string>>;

// A decimal integer exactly as std::to_chars writes it: digits only (and a '-' for signed
// types), no leading zero, no '+', no space, within the type's range.
template <class Int>
std::optional<Int> parse_canonical(std::string_view text) {
  Int value{};
  const char* first = text.data();
  const char* last = text.data() + text.size();
  const auto [end, ec] = std::from_chars(first, last, value);
  if (text.empty() || ec != std::errc{} || end != last) return std::nullopt;
  char buffer[32];
  const auto written = std::to_chars(buffer, buffer + sizeof buffer, value);
  if (std::string_view(buffer, static_cast<std::size_t>(written.ptr - buffer)) != text) {
    return std::nullopt;
  }
  return value;
}

bool is_lower_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

int hex_value(char c) { return c <= '9' ? c - '0' : c - 'a' + 10; }

std::string incarnation_hex(std::uint64_t incarnation) {
  return fmt::format("{:016x}", incarnation);
}

std::optional<std::uint64_t> parse_incarnation(std::string_view text) {
  if (text.size() != 16) return std::nullopt;
  std::uint64_t value = 0;
  for (const char c : text) {
    if (!is_lower_hex(c)) return std::nullopt;
    value = (value << 4) | static_cast<std::uint64_t>(hex_value(c));
  }
  if (value == 0) return std::nullopt;
  return value;
}

std::string quoted(std::string_view value) {
  // Garbage from the network goes into an error text: show at most 80 bytes, non-printable ones
  // escaped.
  std::string out = "'";
  for (std::size_t i = 0; i < value.size() && i < 80; ++i) {
    const auto c = static_cast<unsigned char>(value[i]);
    if (c >= 0x20 && c < 0x7f && c != '\'') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("\\x{:02x}", c);
    }
  }
  if (value.size() > 80) out += "...";
  return out + "'";
}

// What encode() would refuse, shared with decode() so that both apply the same rules.
std::optional<std::string> record_problem(const RecordHeaders& h) {
  if (h.incarnation == 0) return std::string(kHeaderIncarnation) + ": the incarnation is 0";
  if (h.sequence == 0) return std::string(kHeaderSeq) + ": sequences start at 1, not 0";
  if (auto p = host_problem(h.origin)) return std::string(kHeaderOrigin) + ": " + *p;
  if (h.kind == RecordKind::gap) {
    if (h.count == 0) return std::string(kHeaderCount) + ": a GAP covers at least 1 sequence";
    if (h.count - 1 > std::numeric_limits<std::uint64_t>::max() - h.sequence) {
      return fmt::format("{}: {} sequences from {} run past the largest sequence", kHeaderCount,
                         h.count, h.sequence);
    }
    if (!h.key.empty() || h.message_type != 0) {
      return std::string("a GAP record carries no key or message type");
    }
  } else {
    if (h.count != 1) return std::string("a data record covers exactly 1 sequence");
    if (h.key.size() > kMaxKeyBytes) {
      return fmt::format("{}: {} bytes, at most {}", kHeaderKey, h.key.size(), kMaxKeyBytes);
    }
  }
  return std::nullopt;
}

}  // namespace

std::string data_msg_id(std::uint64_t incarnation, std::uint64_t sequence) {
  return fmt::format("{}:{}", incarnation_hex(incarnation), sequence);
}

std::string gap_msg_id(std::uint64_t incarnation, std::uint64_t first, std::uint64_t last) {
  return fmt::format("{}:{}-{}", incarnation_hex(incarnation), first, last);
}

std::string msg_id(const RecordHeaders& h) {
  return h.kind == RecordKind::gap ? gap_msg_id(h.incarnation, h.sequence, h.last_sequence())
                                   : data_msg_id(h.incarnation, h.sequence);
}

tl::expected<MsgIdParts, std::string> parse_msg_id(std::string_view id) {
  auto refuse = [&](std::string_view why) {
    return tl::unexpected(fmt::format("{}: {} {}", kHeaderMsgId, quoted(id), why));
  };
  const std::size_t colon = id.find(':');
  if (colon == std::string_view::npos) return refuse("has no ':' after the incarnation");
  MsgIdParts parts;
  const auto incarnation = parse_incarnation(id.substr(0, colon));
  if (!incarnation) return refuse("does not begin with a non-zero incarnation of 16 lowercase hex");
  parts.incarnation = *incarnation;
  const std::string_view range = id.substr(colon + 1);
  const std::size_t dash = range.find('-');
  const auto first = parse_canonical<std::uint64_t>(range.substr(0, dash));
  if (!first || *first == 0) return refuse("does not name a sequence (canonical decimal, >= 1)");
  parts.first = parts.last = *first;
  if (dash != std::string_view::npos) {
    const auto last = parse_canonical<std::uint64_t>(range.substr(dash + 1));
    if (!last || *last < *first) return refuse("does not name a range first-last with last >= first");
    parts.last = *last;
    parts.gap = true;
  }
  return parts;
}

std::optional<std::string> host_problem(std::string_view host) {
  if (host.empty()) return std::string("the host name is empty");
  if (host.size() > kMaxHostLength) {
    return fmt::format("the host name {} is longer than {} characters", quoted(host),
                       kMaxHostLength);
  }
  for (const char c : host) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return fmt::format("the host name {} has characters outside [A-Za-z0-9._-]", quoted(host));
  }
  return std::nullopt;
}

tl::expected<Fields, std::string> encode(const RecordHeaders& h) {
  if (auto problem = record_problem(h)) return tl::unexpected(*problem);
  Fields out;
  out.reserve(8);
  out.emplace_back(kHeaderType, h.kind == RecordKind::gap ? "gap" : "data");
  out.emplace_back(kHeaderSeq, std::to_string(h.sequence));
  if (h.kind == RecordKind::gap) out.emplace_back(kHeaderCount, std::to_string(h.count));
  out.emplace_back(kHeaderTime, std::to_string(h.time_ns));
  out.emplace_back(kHeaderOrigin, h.origin);
  out.emplace_back(kHeaderIncarnation, incarnation_hex(h.incarnation));
  if (!h.key.empty()) {
    std::string hex;
    hex.reserve(h.key.size() * 2);
    for (const char c : h.key) fmt::format_to(std::back_inserter(hex), "{:02x}", static_cast<unsigned char>(c));
    out.emplace_back(kHeaderKey, std::move(hex));
  }
  if (h.message_type != 0) out.emplace_back(kHeaderMessageType, std::to_string(h.message_type));
  return out;
}

tl::expected<RecordHeaders, std::string> decode(const HeaderLookup& lookup) {
  using Presence = HeaderValue::Presence;
  auto missing = [](std::string_view name) {
    return tl::unexpected(fmt::format("{}: missing", name));
  };
  auto bad = [](std::string_view name, std::string_view value, std::string_view why) {
    return tl::unexpected(fmt::format("{}: {} {}", name, quoted(value), why));
  };
  // Every header we know, looked up once; a repeated one is refused outright.
  struct Got {
    std::string_view name;
    HeaderValue value;
  };
  Got got[] = {{kHeaderMsgId, {}},  {kHeaderType, {}},        {kHeaderSeq, {}},
               {kHeaderCount, {}},  {kHeaderTime, {}},        {kHeaderOrigin, {}},
               {kHeaderIncarnation, {}}, {kHeaderKey, {}},    {kHeaderMessageType, {}}};
  for (Got& g : got) {
    g.value = lookup(g.name);
    if (g.value.presence == Presence::several) {
      return tl::unexpected(fmt::format("{}: present more than once", g.name));
    }
  }
  auto value = [&](std::size_t i) -> const HeaderValue& { return got[i].value; };
  auto present = [&](std::size_t i) { return value(i).presence == Presence::one; };

  // The type first: it says which headers must be there.
  if (!present(1)) return missing(kHeaderType);
  RecordHeaders h;
  if (value(1).value == "data") {
    h.kind = RecordKind::data;
  } else if (value(1).value == "gap") {
    h.kind = RecordKind::gap;
  } else {
    return bad(kHeaderType, value(1).value, "is neither 'data' nor 'gap'");
  }
  for (const std::size_t required : {std::size_t{0}, std::size_t{2}, std::size_t{4},
                                     std::size_t{5}, std::size_t{6}}) {
    if (!present(required)) return missing(got[required].name);
  }
  const auto seq = parse_canonical<std::uint64_t>(value(2).value);
  if (!seq || *seq == 0) return bad(kHeaderSeq, value(2).value, "is not a sequence (canonical decimal, >= 1)");
  h.sequence = *seq;
  const auto time = parse_canonical<std::int64_t>(value(4).value);
  if (!time) return bad(kHeaderTime, value(4).value, "is not a canonical decimal 64-bit time in ns");
  h.time_ns = *time;
  h.origin = std::string(value(5).value);
  if (auto p = host_problem(h.origin)) return tl::unexpected(fmt::format("{}: {}", kHeaderOrigin, *p));
  const auto incarnation = parse_incarnation(value(6).value);
  if (!incarnation) {
    return bad(kHeaderIncarnation, value(6).value, "is not a non-zero incarnation of 16 lowercase hex");
  }
  h.incarnation = *incarnation;

  if (h.kind == RecordKind::gap) {
    if (!present(3)) return missing(kHeaderCount);
    const auto count = parse_canonical<std::uint64_t>(value(3).value);
    if (!count || *count == 0) return bad(kHeaderCount, value(3).value, "is not a count (canonical decimal, >= 1)");
    h.count = *count;
    if (present(7)) return tl::unexpected(fmt::format("{}: not allowed on a GAP record", kHeaderKey));
    if (present(8)) {
      return tl::unexpected(fmt::format("{}: not allowed on a GAP record", kHeaderMessageType));
    }
  } else {
    if (present(3)) return tl::unexpected(fmt::format("{}: not allowed on a data record", kHeaderCount));
    if (present(7)) {
      const std::string_view hex = value(7).value;
      if (hex.empty() || hex.size() % 2 != 0 || hex.size() > 2 * kMaxKeyBytes) {
        return bad(kHeaderKey, hex, fmt::format("is not 1 to {} bytes in hex", kMaxKeyBytes));
      }
      for (std::size_t i = 0; i < hex.size(); i += 2) {
        if (!is_lower_hex(hex[i]) || !is_lower_hex(hex[i + 1])) {
          return bad(kHeaderKey, hex, "is not lowercase hex");
        }
        h.key += static_cast<char>(hex_value(hex[i]) * 16 + hex_value(hex[i + 1]));
      }
    }
    if (present(8)) {
      const auto type = parse_canonical<std::uint32_t>(value(8).value);
      if (!type || *type == 0 || *type > 65535) {
        return bad(kHeaderMessageType, value(8).value, "is not a message type from 1 to 65535");
      }
      h.message_type = static_cast<std::uint16_t>(*type);
    }
  }
  if (auto problem = record_problem(h)) return tl::unexpected(*problem);

  // The id must name exactly this record: bridge in dedupes and chains by it.
  const auto id = parse_msg_id(value(0).value);
  if (!id) return tl::unexpected(id.error());
  if (value(0).value != msg_id(h)) {
    return bad(kHeaderMsgId, value(0).value,
               fmt::format("does not match the record's headers (expected '{}')", msg_id(h)));
  }
  return h;
}

tl::expected<void, std::string> set_headers(natsMsg* msg, const RecordHeaders& headers) {
  auto fields = encode(headers);
  if (!fields) return tl::unexpected(fields.error());
  for (const auto& [name, value] : *fields) {
    // natsMsgHeader_Set wants NUL-terminated strings; every name above is a literal.
    const natsStatus s = natsMsgHeader_Set(msg, std::string(name).c_str(), value.c_str());
    if (s != NATS_OK) {
      return tl::unexpected(fmt::format("setting header {}: {}", name, natsStatus_GetText(s)));
    }
  }
  return {};
}

tl::expected<RecordHeaders, std::string> read_headers(natsMsg* msg) {
  return decode([msg](std::string_view name) -> HeaderValue {
    const std::string key(name);
    const char** values = nullptr;
    int count = 0;
    const natsStatus s = natsMsgHeader_Values(msg, key.c_str(), &values, &count);
    HeaderValue out;
    if (s == NATS_OK && count == 1 && values[0] != nullptr) {
      out.presence = HeaderValue::Presence::one;
      out.value = values[0];  // points into the message, which outlives the decode
    } else if (s == NATS_OK && count > 1) {
      out.presence = HeaderValue::Presence::several;
    }
    std::free(static_cast<void*>(values));  // natsMsgHeader_Values allocates the array (not the strings)
    return out;
  });
}

}  // namespace shmbus::bridge
