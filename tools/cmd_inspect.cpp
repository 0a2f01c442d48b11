// shmbus inspect: a channel's headers and layout, its last record headers, and a consistency walk
// of its ring, all through a read-only mapping (ipc/channel_view.hpp).
#include <cerrno>
#include <csignal>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/ring_walk.hpp"
#include "ipc/channel_view.hpp"
#include "ipc/process.hpp"
#include "tools/commands.hpp"
#include "tools/observe_commands.hpp"
#include "tools/observe_format.hpp"

namespace shmbus::tools {
namespace {

using Json = nlohmann::ordered_json;

// A walk overtaken by producers is retried this many times before it is reported as a note.
constexpr int kWalkRetries = 3;

struct Walked {
  core::RingWalk walk;
  int attempts = 0;
};

Walked walk_until_settled(const core::RingRef& ring, std::size_t keep) {
  Walked w;
  do {
    w.walk = core::walk_ring(ring, keep);
    ++w.attempts;
  } while (w.walk.overtaken && w.walk.problems.empty() && w.attempts <= kWalkRetries);
  return w;
}

// What the two headers hold, read once so that text and JSON show the same values.
struct Headers {
  // ring
  std::uint64_t magic, fingerprint, capacity, incarnation, creator_start_time, repaired_through;
  std::uint64_t tail_position, tail_next_sequence, exclusive_pid;
  std::uint32_t layout_version, header_size, max_message, flags, creator_pid, ready;
  std::int64_t created_ns;
  std::string name;
  // control
  std::uint64_t control_magic, control_fingerprint, control_incarnation;
  std::uint32_t control_version, control_header_size, control_slot_count, control_ready;
};

Headers read_headers(const detail::ChannelView& view) {
  const core::RingHeader& r = *view.ring().header;
  const detail::ControlHeader& c = view.control();
  Headers h{};
  h.magic = r.magic;
  h.layout_version = r.layout_version;
  h.header_size = r.header_size;
  h.fingerprint = r.layout_fingerprint;
  h.capacity = r.capacity;
  h.max_message = r.max_message;
  h.flags = r.flags;
  h.incarnation = r.incarnation;
  h.created_ns = r.created_ns;
  h.creator_pid = r.creator_pid;
  h.creator_start_time = r.creator_start_time;
  h.name.assign(r.name, strnlen(r.name, sizeof(r.name)));
  // acquire/relaxed as any reader: these are statistics here, nothing is read through them.
  h.ready = r.ready.load(std::memory_order_acquire);
  const core::TailWord tail = view.ring().load_tail();
  h.tail_position = tail.position;
  h.tail_next_sequence = tail.next_sequence;
  h.exclusive_pid = r.exclusive_pid.load(std::memory_order_relaxed);  // relaxed: shown only
  h.repaired_through = r.repaired_through.load(std::memory_order_relaxed);  // relaxed: shown only
  h.control_magic = c.magic;
  h.control_version = c.version;
  h.control_header_size = c.header_size;
  h.control_fingerprint = c.layout_fingerprint;
  h.control_incarnation = c.incarnation;
  h.control_slot_count = c.slot_count;
  h.control_ready = c.ready.load(std::memory_order_acquire);  // acquire: as any opener
  return h;
}

std::string hex(std::uint64_t v) { return fmt::format("0x{:016x}", v); }

std::string flags_words(std::uint32_t flags) {
  if (flags == 0) return "0 (multi-producer)";
  if (flags == core::kFlagSingleProducer) return fmt::format("{} (single producer)", flags);
  return fmt::format("{:#x}", flags);
}

Json record_json(const core::WalkedRecord& r) {
  Json j;
  j["position"] = r.position;
  j["sequence"] = r.sequence;
  j["type"] = record_type_name(r.type);
  j["length"] = r.length;
  j["producer"] = r.producer;
  j["timestamp_ns"] = r.timestamp_ns;
  j["time"] = iso8601_utc_ns(r.timestamp_ns);
  j["pending"] = r.pending;
  return j;
}

void print_json(const detail::ChannelView& view, const Headers& h, const Walked& w,
                std::FILE* out) {
  Json j;
  j["channel"] = view.name();
  Json ring;
  ring["magic"] = hex(h.magic);
  ring["layout_version"] = h.layout_version;
  ring["header_size"] = h.header_size;
  ring["layout_fingerprint"] = hex(h.fingerprint);
  ring["capacity"] = h.capacity;
  ring["max_message"] = h.max_message;
  ring["flags"] = h.flags;
  ring["single_producer"] = (h.flags & core::kFlagSingleProducer) != 0;
  ring["incarnation"] = incarnation_hex(h.incarnation);
  ring["name"] = h.name;
  ring["created_ns"] = h.created_ns;
  ring["created"] = iso8601_utc_ns(h.created_ns);
  ring["creator_pid"] = h.creator_pid;
  ring["creator_start_time"] = h.creator_start_time;
  ring["ready"] = h.ready == core::kReadyMarker;
  ring["tail_position"] = h.tail_position;
  ring["tail_next_sequence"] = h.tail_next_sequence;
  ring["exclusive_pid"] = detail::unpack_process(h.exclusive_pid).pid;  // 0: nobody
  ring["repaired_through"] = h.repaired_through;
  j["ring"] = std::move(ring);
  Json control;
  control["magic"] = hex(h.control_magic);
  control["version"] = h.control_version;
  control["header_size"] = h.control_header_size;
  control["layout_fingerprint"] = hex(h.control_fingerprint);
  control["incarnation"] = incarnation_hex(h.control_incarnation);
  control["slot_count"] = h.control_slot_count;
  control["ready"] = h.control_ready != 0;
  j["control"] = std::move(control);
  Json layout;
  layout["ring_path"] = view.ring_path();
  layout["ring_segment_bytes"] = view.ring_segment_size();
  layout["ring_header_bytes"] = sizeof(core::RingHeader);
  layout["data_offset"] = core::kRingDataOffset;
  layout["data_bytes"] = h.capacity;
  layout["checkpoints"] = core::kCheckpoints;
  layout["control_path"] = view.control_path();
  layout["control_segment_bytes"] = view.control_segment_size();
  layout["control_header_bytes"] = sizeof(detail::ControlHeader);
  layout["subscriber_slots"] = detail::kSubscriberSlots;
  layout["producer_slots"] = detail::kProducerSlots;
  j["layout"] = std::move(layout);
  j["records"] = Json::array();
  for (const auto& r : w.walk.last) j["records"].push_back(record_json(r));
  Json walk;
  walk["ok"] = w.walk.problems.empty();
  walk["from_position"] = w.walk.from_position;
  walk["to_position"] = w.walk.to_position;
  walk["head_position"] = w.walk.head_position;
  walk["first_sequence"] = w.walk.first_sequence;
  walk["last_sequence"] = w.walk.last_sequence;
  walk["data_records"] = w.walk.data_records;
  walk["padding_records"] = w.walk.padding_records;
  walk["abandoned_records"] = w.walk.abandoned_records;
  walk["pending_records"] = w.walk.pending_records;
  walk["overtaken"] = w.walk.overtaken;
  walk["start_margin"] = h.capacity / 8;
  // null: the walk did not stop at an uncommitted claim.
  walk["stopped_at_pending"] =
      w.walk.stopped_at_pending == UINT64_MAX ? Json(nullptr) : Json(w.walk.stopped_at_pending);
  walk["committed_beyond_pending"] = w.walk.committed_beyond_pending;
  walk["attempts"] = w.attempts;
  walk["problems"] = Json::array();
  for (const auto& p : w.walk.problems) {
    walk["problems"].push_back({{"position", p.position}, {"what", p.what}});
  }
  j["walk"] = std::move(walk);
  fmt::print(out, "{}\n", j.dump());
}

void print_text(const detail::ChannelView& view, const Headers& h, const Walked& w,
                std::size_t records, std::FILE* out) {
  using Rows = std::vector<std::vector<std::string>>;
  const std::vector<Align> kv{Align::left, Align::left};
  fmt::print(out, "channel {}\n\nring header ({})\n", view.name(), view.ring_path());
  Rows ring{
      {"magic", fmt::format("{} ({})", hex(h.magic),
                            h.magic == core::kRingMagic ? "HMBSRING" : "unexpected")},
      {"layout version", std::to_string(h.layout_version)},
      {"header size", fmt::format("{} bytes", h.header_size)},
      {"layout fingerprint", hex(h.fingerprint)},
      {"capacity", fmt::format("{} ({} bytes)", human_bytes(static_cast<double>(h.capacity)),
                               h.capacity)},
      {"max message", fmt::format("{} bytes", h.max_message)},
      {"flags", flags_words(h.flags)},
      {"incarnation", incarnation_hex(h.incarnation)},
      {"name", h.name},
      {"created", fmt::format("{} ({} ns)", iso8601_utc_ns(h.created_ns), h.created_ns)},
      {"creator pid", fmt::format("{} (start time {})", h.creator_pid, h.creator_start_time)},
      {"ready", h.ready == core::kReadyMarker ? "yes" : fmt::format("no ({:#x})", h.ready)},
      {"tail position", std::to_string(h.tail_position)},
      {"tail next sequence", std::to_string(h.tail_next_sequence)},
      {"exclusive producer",
       h.exclusive_pid == 0 ? std::string("none")
                            : fmt::format("pid {}", detail::unpack_process(h.exclusive_pid).pid)},
      {"repaired through", std::to_string(h.repaired_through)},
  };
  fmt::print(out, "{}", render_table(ring, kv, "  "));

  fmt::print(out, "\ncontrol header ({})\n", view.control_path());
  Rows control{
      {"magic", fmt::format("{} ({})", hex(h.control_magic),
                            h.control_magic == detail::kControlMagic ? "HMBSCTRL" : "unexpected")},
      {"version", std::to_string(h.control_version)},
      {"header size", fmt::format("{} bytes", h.control_header_size)},
      {"layout fingerprint", hex(h.control_fingerprint)},
      {"incarnation", incarnation_hex(h.control_incarnation)},
      {"slot count", std::to_string(h.control_slot_count)},
      {"ready", h.control_ready != 0 ? "yes" : "no"},
  };
  fmt::print(out, "{}", render_table(control, kv, "  "));

  fmt::print(out, "\nlayout\n");
  Rows layout{
      {"ring segment", fmt::format("{}  {} bytes", view.ring_path(), view.ring_segment_size())},
      {"ring header", fmt::format("{} bytes ({} checkpoints)", sizeof(core::RingHeader),
                                  core::kCheckpoints)},
      {"data", fmt::format("offset {}, {} bytes", core::kRingDataOffset, h.capacity)},
      {"control segment",
       fmt::format("{}  {} bytes", view.control_path(), view.control_segment_size())},
      {"control header", fmt::format("{} bytes: {} subscriber slots, {} producer slots",
                                     sizeof(detail::ControlHeader), detail::kSubscriberSlots,
                                     detail::kProducerSlots)},
  };
  fmt::print(out, "{}", render_table(layout, kv, "  "));

  if (records > 0) {
    fmt::print(out, "\nlast {} records\n", w.walk.last.size());
    if (w.walk.last.empty()) {
      fmt::print(out, "  none\n");
    } else {
      Rows rows{{"POSITION", "SEQ", "TYPE", "LENGTH", "PRODUCER", "TIME", "STATE"}};
      for (const auto& r : w.walk.last) {
        rows.push_back({std::to_string(r.position), r.sequence ? std::to_string(r.sequence) : "-",
                        record_type_name(r.type), std::to_string(r.length),
                        std::to_string(r.producer), iso8601_utc_ns(r.timestamp_ns),
                        r.pending ? "pending" : "committed"});
      }
      fmt::print(out, "{}",
                 render_table(rows, {Align::right, Align::right, Align::left, Align::right,
                                     Align::right, Align::left, Align::left},
                              "  "));
    }
  }

  const core::RingWalk& k = w.walk;
  fmt::print(out,
             "\nwalked positions {} to {} (head {}; the start keeps the readers' margin of "
             "capacity/8 = {} bytes from the overwrite front): {} data, {} padding, {} abandoned, "
             "{} pending records\n",
             k.from_position, k.to_position, k.head_position, h.capacity / 8, k.data_records,
             k.padding_records, k.abandoned_records, k.pending_records);
  for (const std::string& line : walk_verdict(k)) fmt::print(out, "{}\n", line);
  if (k.overtaken) {
    fmt::print(out,
               "note: producers overwrote records ahead of the walk {} times (a busy channel); "
               "the last walk checked positions {} to {}\n",
               w.attempts, k.from_position, k.to_position);
  }
}

}  // namespace

int run_inspect(const InspectOptions& o, std::FILE* out) {
  std::signal(SIGPIPE, SIG_IGN);
  try {
    auto view = detail::ChannelView::open(o.channel);
    if (!view) {
      fmt::print(stderr, "shmbus inspect: {}\n", view.error().message);
      return kExitFailure;
    }
    const Headers headers = read_headers(*view);
    const Walked walked = walk_until_settled(view->ring(), o.records);
    if (o.json) {
      print_json(*view, headers, walked, out);
    } else {
      print_text(*view, headers, walked, o.records, out);
    }
    if (std::fflush(out) != 0 && errno != EPIPE) {
      fmt::print(stderr, "shmbus inspect: writing output: {}\n", std::strerror(errno));
      return kExitFailure;
    }
    return walked.walk.problems.empty() ? kExitOk : kExitFailure;
  } catch (const std::exception& e) {  // formatting allocates
    fmt::print(stderr, "shmbus inspect: {}\n", e.what());
    return kExitFailure;
  }
}

void add_inspect_command(CLI::App& app) {
  auto o = std::make_shared<InspectOptions>();
  CLI::App* sub = app.add_subcommand(
      "inspect", "A channel's headers, layout, last record headers and a consistency walk");
  sub->add_option("channel", o->channel, "Channel name")->required();
  sub->add_option("--records", o->records, "Show the last N record headers")
      ->default_val(10)
      ->check(CLI::Range(std::size_t{0}, std::size_t{1'000'000}));
  sub->add_flag("--json", o->json, "One JSON object: ring, control, layout, records, walk");
  sub->footer(
      "The walk checks every record from the earliest retained one (at least capacity/8 past the "
      "overwrite front, the margin readers use) to the head, as a reader would: 'walk: OK, R "
      "records from seq A to B', or 'PROBLEM at position P: what' for each problem. A walk "
      "overtaken by producers is retried 3 times, then reported as a note. A walk that stops at "
      "an uncommitted claim while later records are committed (a slow or dead producer, or a "
      "damaged header; readers mark it abandoned after their abandon_timeout) says so in a "
      "note; that is no problem.\n"
      "The channel is mapped read-only and never changed.\n"
      "Exit: 0 no problem; 1 the walk found problems or the channel cannot be opened; 2 bad "
      "arguments.");
  sub->callback([o] {
    const int code = run_inspect(*o, stdout);
    if (code != kExitOk) throw CLI::RuntimeError(code);
  });
}

}  // namespace shmbus::tools
