// shmbus inspect: prints the report of ipc/channel_inspect.hpp (a channel's headers and layout, its
// last record headers, and a consistency walk of its ring) as a text page or one JSON document.
#include <cerrno>
#include <csignal>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "ipc/channel_inspect.hpp"
#include "tools/commands.hpp"
#include "tools/option_bounds.hpp"
#include "tools/observe_commands.hpp"
#include "tools/observe_format.hpp"
#include "tools/truncation.hpp"

namespace shmbus::tools {
namespace {

using Json = nlohmann::ordered_json;

std::string hex(std::uint64_t v) { return fmt::format("0x{:016x}", v); }

std::string flags_words(const shmbus::detail::RingHeaderReport& ring) {
  if (ring.unknown_flags) return fmt::format("{:#x}", ring.flags);
  if (ring.single_producer) return fmt::format("{} (single producer)", ring.flags);
  return fmt::format("{} (multi-producer)", ring.flags);
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

void print_json(const shmbus::detail::ChannelInspection& report, std::FILE* out) {
  const shmbus::detail::RingHeaderReport& h = report.ring;
  const shmbus::detail::ControlHeaderReport& c = report.control;
  const shmbus::detail::ChannelLayoutReport& l = report.layout;
  const core::RingWalk& k = report.walk;
  Json j;
  j["channel"] = report.channel;
  Json ring;
  ring["magic"] = hex(h.magic);
  ring["layout_version"] = h.layout_version;
  ring["header_size"] = h.header_size;
  ring["layout_fingerprint"] = hex(h.layout_fingerprint);
  ring["capacity"] = h.capacity;
  ring["max_message"] = h.max_message;
  ring["flags"] = h.flags;
  ring["single_producer"] = h.single_producer;
  ring["incarnation"] = incarnation_hex(h.incarnation);
  ring["name"] = h.name;
  ring["created_ns"] = h.created_ns;
  ring["created"] = iso8601_utc_ns(h.created_ns);
  ring["creator_pid"] = h.creator_pid;
  ring["creator_start_time"] = h.creator_start_time;
  ring["ready"] = h.ready;
  ring["tail_position"] = h.tail_position;
  ring["tail_next_sequence"] = h.tail_next_sequence;
  ring["exclusive_pid"] = h.exclusive_pid.value_or(0);  // 0: nobody
  ring["repaired_through"] = h.repaired_through;
  j["ring"] = std::move(ring);
  Json control;
  control["magic"] = hex(c.magic);
  control["version"] = c.version;
  control["header_size"] = c.header_size;
  control["layout_fingerprint"] = hex(c.layout_fingerprint);
  control["incarnation"] = incarnation_hex(c.incarnation);
  control["slot_count"] = c.slot_count;
  control["ready"] = c.ready;
  control["producer_slot_count"] = c.producer_slot_count;
  control["subscriber_slots_high_water"] = c.subscriber_slots_high_water;
  control["producer_slots_high_water"] = c.producer_slots_high_water;
  j["control"] = std::move(control);
  Json layout;
  layout["ring_path"] = l.ring_path;
  layout["ring_segment_bytes"] = l.ring_segment_bytes;
  layout["ring_header_bytes"] = l.ring_header_bytes;
  layout["data_offset"] = l.data_offset;
  layout["data_bytes"] = l.data_bytes;
  layout["checkpoints"] = l.checkpoints;
  layout["control_path"] = l.control_path;
  layout["control_segment_bytes"] = l.control_segment_bytes;
  layout["control_header_bytes"] = l.control_header_bytes;
  layout["subscriber_slots"] = l.subscriber_slots;
  layout["producer_slots"] = l.producer_slots;
  layout["subscriber_slots_offset"] = l.subscriber_slots_offset;
  layout["producer_slots_offset"] = l.producer_slots_offset;
  layout["latency_offset"] = l.latency_offset;
  j["layout"] = std::move(layout);
  j["records"] = Json::array();
  for (const auto& r : k.last) j["records"].push_back(record_json(r));
  Json walk;
  walk["ok"] = report.healthy();
  walk["from_position"] = k.from_position;
  walk["to_position"] = k.to_position;
  walk["head_position"] = k.head_position;
  walk["first_sequence"] = k.first_sequence;
  walk["last_sequence"] = k.last_sequence;
  walk["data_records"] = k.data_records;
  walk["padding_records"] = k.padding_records;
  walk["abandoned_records"] = k.abandoned_records;
  walk["pending_records"] = k.pending_records;
  walk["overtaken"] = k.overtaken;
  walk["start_margin"] = k.start_margin;
  // null: the walk did not stop at an uncommitted claim.
  walk["stopped_at_pending"] =
      k.stopped_at_pending == UINT64_MAX ? Json(nullptr) : Json(k.stopped_at_pending);
  walk["committed_beyond_pending"] = k.committed_beyond_pending;
  walk["attempts"] = report.walk_attempts;
  walk["problems"] = Json::array();
  for (const auto& p : k.problems) {
    walk["problems"].push_back({{"position", p.position}, {"what", p.what}});
  }
  j["walk"] = std::move(walk);
  fmt::print(out, "{}\n", j.dump());
}

void print_text(const shmbus::detail::ChannelInspection& report, std::size_t records, std::FILE* out) {
  const shmbus::detail::RingHeaderReport& h = report.ring;
  const shmbus::detail::ControlHeaderReport& c = report.control;
  const shmbus::detail::ChannelLayoutReport& l = report.layout;
  using Rows = std::vector<std::vector<std::string>>;
  const std::vector<Align> kv{Align::left, Align::left};
  fmt::print(out, "channel {}\n\nring header ({})\n", report.channel, l.ring_path);
  Rows ring{
      {"magic", fmt::format("{} ({})", hex(h.magic), h.magic_ok ? "HMBSRING" : "unexpected")},
      {"layout version", std::to_string(h.layout_version)},
      {"header size", fmt::format("{} bytes", h.header_size)},
      {"layout fingerprint", hex(h.layout_fingerprint)},
      {"capacity", fmt::format("{} ({} bytes)", human_bytes(static_cast<double>(h.capacity)),
                               h.capacity)},
      {"max message", fmt::format("{} bytes", h.max_message)},
      {"flags", flags_words(h)},
      {"incarnation", incarnation_hex(h.incarnation)},
      {"name", h.name},
      {"created", fmt::format("{} ({} ns)", iso8601_utc_ns(h.created_ns), h.created_ns)},
      {"creator pid", fmt::format("{} (start time {})", h.creator_pid, h.creator_start_time)},
      {"ready", h.ready ? "yes" : fmt::format("no ({:#x})", h.ready_marker)},
      {"tail position", std::to_string(h.tail_position)},
      {"tail next sequence", std::to_string(h.tail_next_sequence)},
      {"exclusive producer",
       h.exclusive_pid ? fmt::format("pid {}", *h.exclusive_pid) : std::string("none")},
      {"repaired through", std::to_string(h.repaired_through)},
  };
  fmt::print(out, "{}", render_table(ring, kv, "  "));

  fmt::print(out, "\ncontrol header ({})\n", l.control_path);
  Rows control{
      {"magic", fmt::format("{} ({})", hex(c.magic), c.magic_ok ? "HMBSCTRL" : "unexpected")},
      {"version", std::to_string(c.version)},
      {"header size", fmt::format("{} bytes", c.header_size)},
      {"layout fingerprint", hex(c.layout_fingerprint)},
      {"incarnation", incarnation_hex(c.incarnation)},
      {"slot count", std::to_string(c.slot_count)},
      {"ready", c.ready ? "yes" : "no"},
      {"producer slots", std::to_string(c.producer_slot_count)},
      {"slots ever taken", fmt::format("{} subscriber, {} producer (high-water marks)",
                                       c.subscriber_slots_high_water,
                                       c.producer_slots_high_water)},
  };
  fmt::print(out, "{}", render_table(control, kv, "  "));

  fmt::print(out, "\nlayout\n");
  Rows layout{
      {"ring segment", fmt::format("{}  {} bytes", l.ring_path, l.ring_segment_bytes)},
      {"ring header", fmt::format("{} bytes ({} checkpoints)", l.ring_header_bytes, l.checkpoints)},
      {"data", fmt::format("offset {}, {} bytes", l.data_offset, l.data_bytes)},
      {"control segment", fmt::format("{}  {} bytes", l.control_path, l.control_segment_bytes)},
      {"control header", fmt::format("{} bytes: {} subscriber slots, {} producer slots",
                                     l.control_header_bytes, l.subscriber_slots,
                                     l.producer_slots)},
      {"control arrays",
       fmt::format("subscriber slots at {}, producer slots at {}, latency histograms at {}",
                   l.subscriber_slots_offset, l.producer_slots_offset, l.latency_offset)},
  };
  fmt::print(out, "{}", render_table(layout, kv, "  "));

  const core::RingWalk& k = report.walk;
  if (records > 0) {
    fmt::print(out, "\nlast {} records\n", k.last.size());
    if (k.last.empty()) {
      fmt::print(out, "  none\n");
    } else {
      Rows rows{{"POSITION", "SEQ", "TYPE", "LENGTH", "PRODUCER", "TIME", "STATE"}};
      for (const auto& r : k.last) {
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

  fmt::print(out,
             "\nwalked positions {} to {} (head {}; the start keeps the readers' margin of "
             "capacity/8 = {} bytes from the overwrite front): {} data, {} padding, {} abandoned, "
             "{} pending records\n",
             k.from_position, k.to_position, k.head_position, k.start_margin, k.data_records,
             k.padding_records, k.abandoned_records, k.pending_records);
  for (const std::string& line : walk_verdict(k)) fmt::print(out, "{}\n", line);
  if (k.overtaken) {
    fmt::print(out,
               "note: producers overwrote records ahead of the walk {} times (a busy channel); "
               "the last walk checked positions {} to {}\n",
               report.walk_attempts, k.from_position, k.to_position);
  }
}

}  // namespace

int run_inspect(const InspectOptions& o, std::FILE* out) {
  std::signal(SIGPIPE, SIG_IGN);
  const detail::MappingGuard guard;  // a truncated channel is an error, not a SIGBUS
  try {
    const auto report =
        read_guarded([&] { return shmbus::detail::inspect_channel(o.channel, o.records); });
    if (!report) {
      fmt::print(stderr, "shmbus inspect: {}\n", report.error().message);
      return kExitFailure;
    }
    if (o.json) {
      print_json(*report, out);
    } else {
      print_text(*report, o.records, out);
    }
    if (std::fflush(out) != 0 && errno != EPIPE) {
      fmt::print(stderr, "shmbus inspect: writing output: {}\n", std::strerror(errno));
      return kExitFailure;
    }
    return report->healthy() ? kExitOk : kExitFailure;
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
      ->transform(whole_number_in(0, 1'000'000));
  sub->add_flag("--json", o->json, "One JSON object: ring, control, layout, records, walk");
  sub->footer(fmt::format(
      "The walk checks every record from the earliest retained one (at least capacity/8 past the "
      "overwrite front, the margin readers use) to the head, as a reader would: 'walk: OK, R "
      "records from seq A to B', or 'PROBLEM at position P: what' for each problem. A walk "
      "overtaken by producers is retried {} times, then reported as a note. A walk that stops at "
      "an uncommitted claim while later records are committed (a slow or dead producer, or a "
      "damaged header; readers mark it abandoned after their abandon_timeout) says so in a "
      "note; that is no problem.\n"
      "The channel is mapped read-only and never changed.\n"
      "Exit: 0 no problem; 1 the walk found problems or the channel cannot be opened; 2 bad "
      "arguments.",
      shmbus::detail::kInspectWalkRetries));
  sub->callback([o] {
    const int code = run_inspect(*o, stdout);
    if (code != kExitOk) throw CLI::RuntimeError(code);
  });
}

}  // namespace shmbus::tools
