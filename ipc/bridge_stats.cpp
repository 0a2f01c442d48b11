// What `shmbus stat` shows of a channel's bridges: read from each bridge object through a read-only
// mapping, every value checked before it is used (a damaged object is reported in its `problem`,
// never trusted, never a crash).
#include "shmbus/bridge_stats.hpp"

#include <cstring>

#include <fmt/format.h>

#include "ipc/bridge_segment.hpp"
#include "ipc/channel.hpp"
#include "ipc/process.hpp"

namespace shmbus {

namespace {

using namespace detail;

void read_counters(const BridgeCounters& c, bool out_role, BridgeStats& s) {
  // relaxed (all): statistics the bridge stores on its own; nothing is ordered by them.
  const std::uint64_t done = c.published_or_applied.load(std::memory_order_relaxed);
  (out_role ? s.published : s.applied) = done;
  s.acked_through = c.acked_through.load(std::memory_order_relaxed);    // relaxed: statistic
  s.in_flight = c.in_flight.load(std::memory_order_relaxed);            // relaxed: statistic
  s.window = c.window.load(std::memory_order_relaxed);                  // relaxed: statistic
  s.resends = c.resends.load(std::memory_order_relaxed);                // relaxed: statistic
  s.recoveries = c.recoveries.load(std::memory_order_relaxed);          // relaxed: statistic
  s.gaps = c.gaps.load(std::memory_order_relaxed);                      // relaxed: statistic
  s.gap_sequences = c.gap_sequences.load(std::memory_order_relaxed);    // relaxed: statistic
  s.duplicates = c.duplicates.load(std::memory_order_relaxed);          // relaxed: statistic
  s.own_skipped = c.own_skipped.load(std::memory_order_relaxed);        // relaxed: statistic
  s.stream_gaps = c.stream_gaps.load(std::memory_order_relaxed);        // relaxed: statistic
  s.invalid = c.invalid.load(std::memory_order_relaxed);                // relaxed: statistic
  s.lag_records = c.lag_records.load(std::memory_order_relaxed);        // relaxed: statistic
  s.lag_ns = c.lag_ns.load(std::memory_order_relaxed);                  // relaxed: statistic
  s.head_sequence = c.head_sequence.load(std::memory_order_relaxed);    // relaxed: statistic
  s.origin_incarnation = c.origin_incarnation.load(std::memory_order_relaxed);  // relaxed: stat
  s.origin_seq = c.origin_seq.load(std::memory_order_relaxed);          // relaxed: statistic
  s.stream_seq = c.stream_seq.load(std::memory_order_relaxed);          // relaxed: statistic
}

// The values no bridge writes: named in `problem` (the values themselves stay visible).
std::string implausible(const BridgeStats& s) {
  if (s.window != 0 && s.in_flight > s.window) {
    return fmt::format("{} records in flight exceed its window of {}", s.in_flight, s.window);
  }
  if (s.gap_sequences < s.gaps) {
    return fmt::format("its {} gaps cover only {} sequences", s.gaps, s.gap_sequences);
  }
  if (s.heartbeat_ns < 0) return fmt::format("its heartbeat {} is negative", s.heartbeat_ns);
  return {};
}

void read_one(const ShmSegment& segment, BridgeStats& s) {
  const BridgeHeader& h = *static_cast<const BridgeHeader*>(segment.base());
  s.role = bridge_role_name(static_cast<BridgeRole>(h.role));  // validated: out or in
  s.stream = std::string(h.stream, strnlen(h.stream, sizeof h.stream));
  if (s.stream != s.name) {
    s.problem = fmt::format("the object is named for stream '{}' but declares '{}'", s.name,
                            s.stream);
    return;
  }
  // acquire: pairs with the owner's ownership CAS (release); a pid seen is a full identity.
  const std::uint64_t owner = h.owner.load(std::memory_order_acquire);
  const ProcessId holder = unpack_process(owner);
  s.pid = static_cast<std::int32_t>(holder.pid);  // 22 bits: always fits
  s.alive = owner != 0 && process_alive(holder);
  // relaxed: a statistic.
  s.heartbeat_ns = h.heartbeat_ns.load(std::memory_order_relaxed);
  read_counters(h.counters, h.role == static_cast<std::uint8_t>(BridgeRole::out), s);

  BridgeSettings settings;
  if (std::string why = read_bridge_settings(h.settings, settings); !why.empty()) {
    s.problem = std::move(why);
    return;
  }
  s.subject = std::move(settings.subject);
  s.url = std::move(settings.url);
  s.host = std::move(settings.host);
  std::uint64_t state = 0;
  if (std::string why = read_bridge_text(h.text, state, s.last_error); !why.empty()) {
    s.problem = std::move(why);
    return;
  }
  if (state < static_cast<std::uint64_t>(BridgeState::connecting) ||
      state > static_cast<std::uint64_t>(BridgeState::stopped)) {
    s.problem = fmt::format("its state {} is unknown", state);
    return;
  }
  s.state = bridge_state_name(static_cast<BridgeState>(state));
  s.problem = implausible(s);
}

}  // namespace

Result<std::vector<BridgeStats>> read_bridge_stats(std::string_view channel) {
  auto mapping = ChannelMapping::open(channel, false, std::chrono::milliseconds(0), false);
  if (!mapping) return tl::unexpected(mapping.error());
  const std::uint64_t incarnation = (*mapping)->info().incarnation;
  std::vector<BridgeStats> all;
  for (const std::string& entry : list_bridge_names(channel, incarnation)) {
    BridgeStats s;
    // "<role>.<stream>": the object's name says which bridge it is, even when its bytes cannot.
    const auto dot = entry.find('.');
    s.role = entry.substr(0, dot);
    s.name = dot == std::string::npos ? std::string() : entry.substr(dot + 1);
    if ((s.role != "out" && s.role != "in") || !valid_bridge_stream(s.name)) {
      s.problem = fmt::format("'{}' is not a bridge object's name", entry);
      all.push_back(std::move(s));
      continue;
    }
    const std::string object = bridge_object_prefix(channel, incarnation) + entry;
    auto segment = ShmSegment::open(object, false, false);
    if (!segment) {
      if (segment.error().code == ErrorCode::not_found) continue;  // removed meanwhile
      s.problem = segment.error().message;
      all.push_back(std::move(s));
      continue;
    }
    const std::string where = fmt::format("bridge {} '{}' of channel '{}'", s.role, s.name, channel);
    if (auto valid = validate_bridge(*segment, incarnation, where); !valid) {
      s.problem = valid.error().message;
      all.push_back(std::move(s));
      continue;
    }
    const std::string named_role = s.role;
    read_one(*segment, s);
    if (s.problem.empty() && s.role != named_role) {
      s.problem = fmt::format("the object is named for role '{}' but declares '{}'", named_role,
                              s.role);
    }
    all.push_back(std::move(s));
  }
  return all;
}

}  // namespace shmbus
