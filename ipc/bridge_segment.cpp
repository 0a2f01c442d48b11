#include "ipc/bridge_segment.hpp"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "ipc/channel.hpp"
#include "ipc/channel_access.hpp"
#include "ipc/process.hpp"

namespace shmbus::detail {

const char* bridge_role_name(BridgeRole role) noexcept {
  switch (role) {
    case BridgeRole::out: return "out";
    case BridgeRole::in: return "in";
  }
  return "unknown";
}

const char* bridge_state_name(BridgeState state) noexcept {
  switch (state) {
    case BridgeState::connecting: return "connecting";
    case BridgeState::running: return "running";
    case BridgeState::recovering: return "recovering";
    case BridgeState::holding_back: return "holding back";
    case BridgeState::stopped: return "stopped";
  }
  return "unknown";
}

bool valid_bridge_stream(std::string_view stream) noexcept {
  return !stream.empty() && stream.size() < kBridgeStreamSize &&
         std::all_of(stream.begin(), stream.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-';
         });
}

std::string bridge_object_prefix(std::string_view channel, std::uint64_t incarnation) {
  return fmt::format("{}.bridge-", control_object_name(channel, incarnation));
}

std::string bridge_object_name(std::string_view channel, std::uint64_t incarnation,
                               BridgeRole role, std::string_view stream) {
  return fmt::format("{}{}.{}", bridge_object_prefix(channel, incarnation),
                     bridge_role_name(role), stream);
}

std::vector<std::string> list_bridge_names(std::string_view channel, std::uint64_t incarnation) {
  std::vector<std::string> names;
  const std::string prefix = bridge_object_prefix(channel, incarnation);
  DIR* dir = ::opendir("/dev/shm");
  if (dir == nullptr) return names;
  while (const dirent* e = ::readdir(dir)) {
    const std::string_view n(e->d_name);
    // Staging objects (".tmp.<pid>.<serial>") are a creator's, not yet a bridge's.
    if (n.size() > prefix.size() && n.substr(0, prefix.size()) == prefix &&
        n.find(".tmp.") == std::string_view::npos) {
      names.emplace_back(n.substr(prefix.size()));
    }
  }
  ::closedir(dir);
  std::sort(names.begin(), names.end());
  return names;
}

namespace {

std::atomic<std::uint64_t> staging_serial{0};

// Printable ASCII only: what shared memory holds must be safe to print, and to put in JSON.
std::string printable(std::string_view text, std::size_t limit) {
  std::string out(text.substr(0, std::min(text.size(), limit)));
  for (char& c : out) {
    if (c < 0x20 || c > 0x7e) c = '?';
  }
  return out;
}

template <std::size_t N>
void put_text(std::uint64_t (&words)[N], std::size_t first_word, std::string_view text) {
  std::memcpy(reinterpret_cast<char*>(&words[first_word]), text.data(), text.size());
}

Result<void> check_settings(const BridgeSettings& s) {
  auto bad = [](std::string what) {
    return tl::unexpected(Error{ErrorCode::invalid_argument, std::move(what)});
  };
  if (s.role != BridgeRole::out && s.role != BridgeRole::in) {
    return bad(fmt::format("bad bridge role {}", static_cast<unsigned>(s.role)));
  }
  if (!valid_bridge_stream(s.stream)) {
    return bad(fmt::format("bad stream name '{}': use 1-{} of [A-Za-z0-9_-]", s.stream,
                           kBridgeStreamSize - 1));
  }
  if (s.subject.size() >= kBridgeTextSize || s.url.size() >= kBridgeTextSize ||
      s.host.size() >= kBridgeHostSize) {
    return bad(fmt::format("bridge subject, url or host too long (at most {}, {} and {} bytes)",
                           kBridgeTextSize - 1, kBridgeTextSize - 1, kBridgeHostSize - 1));
  }
  return {};
}

void write_settings(BridgeSettingsText& record, const BridgeSettings& s) {
  const std::string subject = printable(s.subject, kBridgeTextSize - 1);
  const std::string url = printable(s.url, kBridgeTextSize - 1);
  const std::string host = printable(s.host, kBridgeHostSize - 1);
  std::uint64_t words[kBridgeSettingsWords] = {};
  words[0] = subject.size() | (std::uint64_t{url.size()} << 16) | (std::uint64_t{host.size()} << 32);
  put_text(words, 1, subject);
  put_text(words, 1 + kBridgeTextSize / 8, url);
  put_text(words, 1 + 2 * kBridgeTextSize / 8, host);
  seqlock_write(record, words);
}

// Writes the copy the previous write did not: that one stays whole whatever happens to this one.
void write_position(BridgePositionRecord& r, const BridgeInPosition& p) {
  // relaxed: the owner is the only writer of these words; it reads back its own stores.
  std::uint64_t versions[2];
  for (int i = 0; i < 2; ++i) {
    versions[i] = r.copy[i].words[0].load(std::memory_order_relaxed);  // relaxed: see above
  }
  const std::uint64_t version = std::max(versions[0], versions[1]) + 1;
  const std::uint64_t words[kBridgePositionWords] = {
      version, p.stream_seq, p.stream_created_ns, p.origin_incarnation, p.origin_seq, p.local_seq};
  seqlock_write(r.copy[version & 1], words);
}

// A copy a dead owner left half-written (its sequence word odd) gets version 0: readers then
// take the other copy, which that owner's previous write left whole.
void invalidate_torn_copies(BridgePositionRecord& r) {
  for (auto& copy : r.copy) {
    // relaxed: the previous owner is dead and our ownership CAS (acq_rel) ordered its stores
    // before this load.
    if ((copy.seq.load(std::memory_order_relaxed) & 1) == 0) continue;
    const std::uint64_t zero[kBridgePositionWords] = {};
    seqlock_write(copy, zero);
  }
}

void format_bridge(void* base, std::size_t size, std::uint64_t incarnation,
                   const BridgeSettings& s) {
  BridgeHeader& h = *static_cast<BridgeHeader*>(base);
  h.magic = kBridgeMagic;
  h.version = kBridgeVersion;
  h.header_size = sizeof(BridgeHeader);
  h.layout_fingerprint = bridge_layout_fingerprint();
  h.incarnation = incarnation;
  h.segment_size = size;
  h.created_ns = realtime_ns();
  h.role = static_cast<std::uint8_t>(s.role);
  std::memcpy(h.stream, s.stream.data(), s.stream.size());
  // release: everything above (and the zeroed rest) is visible to whoever acquires `ready`.
  h.ready.store(kBridgeReady, std::memory_order_release);
}

// The mode and group of the channel's control segment: a bridge object is trusted like it.
Result<std::pair<unsigned, std::uint32_t>> control_mode(const std::string& name) {
  struct stat st {};
  if (::stat(shm_path(name).c_str(), &st) != 0) {
    return tl::unexpected(shm_error("cannot stat", name, errno));
  }
  return std::pair<unsigned, std::uint32_t>{st.st_mode & 0777, st.st_gid};
}

Result<ShmSegment> open_or_create(const std::string& name, std::uint64_t incarnation,
                                  const BridgeSettings& settings, unsigned mode,
                                  std::uint32_t gid) {
  for (int attempt = 0; attempt < 50; ++attempt) {
    auto existing = ShmSegment::open(name, true, true);
    if (existing) return existing;
    if (existing.error().code != ErrorCode::not_found) return existing;
    // Built under a private name, then linked: a reader never maps a half-formatted object.
    // relaxed: only a unique number; nothing is published through it.
    const std::uint64_t serial = staging_serial.fetch_add(1, std::memory_order_relaxed);
    const std::string staging = fmt::format("{}.tmp.{}.{}", name, ::getpid(), serial);
    ShmSegment::remove(staging);
    const std::size_t size = bridge_segment_size();
    // With another group than ours: created private first and given its group and mode after
    // (as open_or_create_group in ipc/group_segment.cpp does).
    const bool other_group = static_cast<std::uint32_t>(::getegid()) != gid;
    auto created = ShmSegment::create(staging, size, other_group ? (mode & 0700) : mode);
    if (!created) return created;
    if (other_group) {
      if (auto given = give_to_group(staging, gid, mode); !given) {
        ShmSegment::remove(staging);
        return tl::unexpected(given.error());
      }
    }
    format_bridge(created->base(), size, incarnation, settings);
    auto linked = ShmSegment::link(staging, name);
    ShmSegment::remove(staging);
    if (!linked) return tl::unexpected(linked.error());
    if (*linked) return created;
    // Another bridge created it first: open theirs (the ownership check below decides).
  }
  return tl::unexpected(Error{
      ErrorCode::busy,
      fmt::format("bridge object {}: could not be created or opened (it keeps disappearing)",
                  name)});
}

// Takes the ownership: from nobody, or from a dead process; busy while a live one holds it.
Result<void> take_ownership(BridgeHeader& h, const std::string& where) {
  const ProcessId self = self_process();
  const std::uint64_t mine = pack_process(self);
  for (int attempt = 0; attempt < 100; ++attempt) {
    // acquire: pairs with the release of a previous owner's CAS; we see what it stored before.
    std::uint64_t owner = h.owner.load(std::memory_order_acquire);
    if (owner != 0) {
      const ProcessId holder = unpack_process(owner);
      if (holder.pid == self.pid || process_alive(holder)) {
        return tl::unexpected(Error{
            ErrorCode::busy,
            fmt::format("{}: another bridge (pid {}) runs for it", where, holder.pid)});
      }
    }
    // acq_rel: the winner alone owns the object from here on (acquire: it sees the dead owner's
    // last stores; release: readers that acquire the owner word see ours that came before).
    if (h.owner.compare_exchange_strong(owner, mine, std::memory_order_acq_rel)) return {};
  }
  return tl::unexpected(
      Error{ErrorCode::busy, fmt::format("{}: cannot take the bridge's ownership", where)});
}

}  // namespace

Result<void> validate_bridge(const ShmSegment& segment, std::uint64_t incarnation,
                             const std::string& where) {
  auto fail = [&](ErrorCode code, const std::string& what) {
    return tl::unexpected(Error{code, fmt::format("{}: {}", where, what)});
  };
  if (segment.size() < sizeof(BridgeHeader)) {
    return fail(ErrorCode::corrupt,
                fmt::format("bridge object is too small ({} bytes)", segment.size()));
  }
  const BridgeHeader& h = *static_cast<const BridgeHeader*>(segment.base());
  if (h.magic != kBridgeMagic) return fail(ErrorCode::corrupt, "bridge object has a bad magic");
  if (h.version != kBridgeVersion || h.layout_fingerprint != bridge_layout_fingerprint() ||
      h.header_size != sizeof(BridgeHeader)) {
    return fail(ErrorCode::version_mismatch,
                fmt::format("bridge layout version {} (fingerprint {:016x}) differs from this "
                            "build's {} ({:016x})",
                            h.version, h.layout_fingerprint, kBridgeVersion,
                            bridge_layout_fingerprint()));
  }
  // acquire: pairs with the creator's release of `ready`; the identity was written before.
  if (h.ready.load(std::memory_order_acquire) != kBridgeReady) {
    return fail(ErrorCode::corrupt, "bridge object is not ready (its creator died building it)");
  }
  if (h.incarnation != incarnation) {
    return fail(ErrorCode::corrupt, "bridge object belongs to another incarnation of the channel");
  }
  const std::uint64_t declared_size = h.segment_size;
  if (declared_size != bridge_segment_size() || segment.size() < declared_size) {
    return fail(ErrorCode::corrupt,
                fmt::format("bridge object declares {} bytes; the mapping has {}", declared_size,
                            segment.size()));
  }
  const std::uint8_t role = h.role;
  if (role != static_cast<std::uint8_t>(BridgeRole::out) &&
      role != static_cast<std::uint8_t>(BridgeRole::in)) {
    return fail(ErrorCode::corrupt, fmt::format("bridge object declares role {}", role));
  }
  if (!valid_bridge_stream(std::string_view(h.stream, strnlen(h.stream, sizeof h.stream)))) {
    return fail(ErrorCode::corrupt, "bridge object names no valid stream");
  }
  return {};
}

Result<BridgeSegment> BridgeSegment::open_owned(const ChannelInfo& channel,
                                                const BridgeSettings& settings) {
  if (auto ok = check_settings(settings); !ok) return tl::unexpected(ok.error());
  const std::string name =
      bridge_object_name(channel.name, channel.incarnation, settings.role, settings.stream);
  const std::string where = fmt::format("bridge {} '{}' of channel '{}'",
                                        bridge_role_name(settings.role), settings.stream,
                                        channel.name);
  auto mode = control_mode(control_object_name(channel.name, channel.incarnation));
  if (!mode) return tl::unexpected(mode.error());
  auto segment = open_or_create(name, channel.incarnation, settings, mode->first, mode->second);
  if (!segment) return tl::unexpected(segment.error());
  if (auto valid = validate_bridge(*segment, channel.incarnation, where); !valid) {
    return tl::unexpected(valid.error());
  }
  BridgeHeader& h = *static_cast<BridgeHeader*>(segment->base());
  if (h.role != static_cast<std::uint8_t>(settings.role) ||
      std::string_view(h.stream, strnlen(h.stream, sizeof h.stream)) != settings.stream) {
    return tl::unexpected(Error{ErrorCode::corrupt,
                                fmt::format("{}: the object names another bridge", where)});
  }
  if (auto owned = take_ownership(h, where); !owned) return tl::unexpected(owned.error());
  BridgeSegment bridge;
  bridge.segment_ = std::move(*segment);
  bridge.name_ = name;
  invalidate_torn_copies(h.applied);
  invalidate_torn_copies(h.intent);
  write_settings(h.settings, settings);
  bridge.set_state(BridgeState::connecting);
  // relaxed: statistics for readers; the ownership CAS already published the owner.
  h.owned_ns.store(realtime_ns(), std::memory_order_relaxed);
  bridge.heartbeat();
  return bridge;
}

BridgeSegment::BridgeSegment(BridgeSegment&&) noexcept = default;
BridgeSegment& BridgeSegment::operator=(BridgeSegment&& other) noexcept {
  if (this != &other) {
    close();
    segment_ = std::move(other.segment_);
    name_ = std::move(other.name_);
  }
  return *this;
}

BridgeSegment::~BridgeSegment() { close(); }

void BridgeSegment::close() noexcept {
  if (segment_.base() == nullptr) return;
  BridgeHeader& h = header();
  // The last error stays: a stopped bridge shows why it stopped. Our own record: the read
  // cannot fail, and a copy that did would only lose the text.
  std::uint64_t state = 0;
  std::string last_error;
  try {
    (void)read_bridge_text(h.text, state, last_error);
  } catch (...) {
    last_error.clear();
  }
  set_state(BridgeState::stopped, last_error);
  std::uint64_t mine = pack_process(self_process());
  // release: the next owner (which acquires the word) sees every store we made.
  h.owner.compare_exchange_strong(mine, 0, std::memory_order_release);
  segment_ = ShmSegment();
}

BridgeHeader& BridgeSegment::header() const noexcept {
  return *static_cast<BridgeHeader*>(segment_.base());
}

BridgeCounters& BridgeSegment::counters() noexcept { return header().counters; }

void BridgeSegment::set_state(BridgeState state, std::string_view last_error) noexcept {
  std::uint64_t words[kBridgeTextWords] = {};
  const std::size_t length = std::min(last_error.size(), kBridgeTextSize);
  std::memcpy(reinterpret_cast<char*>(&words[1]), last_error.data(), length);
  char* text = reinterpret_cast<char*>(&words[1]);
  for (std::size_t i = 0; i < length; ++i) {
    if (text[i] < 0x20 || text[i] > 0x7e) text[i] = '?';  // printable only (see printable())
  }
  words[0] = static_cast<std::uint64_t>(state) | (std::uint64_t{length} << 8);
  seqlock_write(header().text, words);
}

void BridgeSegment::heartbeat() noexcept {
  // relaxed: a statistic for readers; nothing is ordered by it.
  header().heartbeat_ns.store(realtime_ns(), std::memory_order_relaxed);
}

BridgeSegment::InPosition BridgeSegment::applied() const noexcept {
  return read_bridge_position(header().applied);
}

void BridgeSegment::set_applied(const InPosition& position) noexcept {
  write_position(header().applied, position);
}

BridgeSegment::InPosition BridgeSegment::intent() const noexcept {
  return read_bridge_position(header().intent);
}

void BridgeSegment::set_intent(const InPosition& position) noexcept {
  write_position(header().intent, position);
}

std::string read_bridge_text(const BridgeText& text, std::uint64_t& state,
                             std::string& last_error) {
  std::uint64_t words[kBridgeTextWords];
  if (!seqlock_read(text, words, 1000)) {
    return "its state record is being changed (or its writer died changing it)";
  }
  state = words[0] & 0xff;
  const std::uint64_t length = words[0] >> 8;
  if (length > kBridgeTextSize) {
    return fmt::format("its last error declares {} bytes (at most {})", length, kBridgeTextSize);
  }
  last_error.assign(reinterpret_cast<const char*>(&words[1]), length);
  if (!std::all_of(last_error.begin(), last_error.end(),
                   [](char c) { return c >= 0x20 && c <= 0x7e; })) {
    last_error.clear();
    return "its last error holds bytes that are not printable text";
  }
  return {};
}

std::string read_bridge_settings(const BridgeSettingsText& text, BridgeSettings& out) {
  std::uint64_t words[kBridgeSettingsWords];
  if (!seqlock_read(text, words, 1000)) {
    return "its settings record is being changed (or its writer died changing it)";
  }
  const std::uint64_t subject = words[0] & 0xffff;
  const std::uint64_t url = (words[0] >> 16) & 0xffff;
  const std::uint64_t host = (words[0] >> 32) & 0xffff;
  if (subject >= kBridgeTextSize || url >= kBridgeTextSize || host >= kBridgeHostSize ||
      (words[0] >> 48) != 0) {
    return fmt::format("its settings declare lengths {}, {} and {} (subject, url, host)", subject,
                       url, host);
  }
  const char* base = reinterpret_cast<const char*>(&words[1]);
  out.subject.assign(base, subject);
  out.url.assign(base + kBridgeTextSize, url);
  out.host.assign(base + 2 * kBridgeTextSize, host);
  auto printable_text = [](const std::string& s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c <= 0x7e; });
  };
  if (!printable_text(out.subject) || !printable_text(out.url) || !printable_text(out.host)) {
    out.subject.clear();
    out.url.clear();
    out.host.clear();
    return "its settings hold bytes that are not printable text";
  }
  return {};
}

BridgeInPosition read_bridge_position(const BridgePositionRecord& record) noexcept {
  BridgeInPosition best;
  std::uint64_t best_version = 0;
  for (const auto& copy : record.copy) {
    std::uint64_t words[kBridgePositionWords];
    if (!seqlock_read(copy, words, 1000) || words[0] <= best_version) continue;
    best_version = words[0];
    best = BridgeInPosition{words[1], words[2], words[3], words[4], words[5]};
  }
  return best;
}

}  // namespace shmbus::detail
