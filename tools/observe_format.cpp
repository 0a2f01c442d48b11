// The shared parts of tools/observe_format.hpp: rates, latency summaries, words, ls and inspect.
// stat_json.cpp, stat_prometheus.cpp and stat_text.cpp hold the stat formats and the tables.
#include "tools/observe_format.hpp"

#include <algorithm>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tools/format.hpp"

namespace shmbus::tools {
namespace {

using Json = nlohmann::ordered_json;

// The same process in the same slot in both reads.
bool same_occupant(const ProducerStats& a, const ProducerStats& b) noexcept {
  return a.slot == b.slot && a.pid == b.pid && a.start_time == b.start_time &&
         a.attached_ns == b.attached_ns;
}
bool same_occupant(const SubscriberStats& a, const SubscriberStats& b) noexcept {
  return a.slot == b.slot && a.pid == b.pid && a.start_time == b.start_time &&
         a.attached_ns == b.attached_ns;
}

template <class Slot>
const Slot* find_slot(const std::vector<Slot>& slots, std::uint32_t slot) noexcept {
  for (const Slot& s : slots) {
    if (s.slot == slot) return &s;
  }
  return nullptr;
}

double per_second(std::uint64_t after, std::uint64_t before, double interval_s) noexcept {
  if (after <= before || interval_s <= 0) return 0;
  return static_cast<double>(after - before) / interval_s;
}

}  // namespace

// --- rates --------------------------------------------------------------------------------------

ChannelRates measure_rates(const ChannelStats* before, const ChannelStats& after) {
  ChannelRates r;
  r.producer_messages_per_s.assign(after.producers.size(), 0.0);
  r.subscriber_messages_per_s.assign(after.subscribers.size(), 0.0);
  r.subscriber_latency.resize(after.subscribers.size());
  if (before == nullptr) return r;
  const std::int64_t elapsed = after.sampled_monotonic_ns - before->sampled_monotonic_ns;
  if (elapsed > 0) r.interval_s = static_cast<double>(elapsed) / 1e9;
  if (before->incarnation != after.incarnation) {
    r.incarnation_changed = true;
    return r;
  }
  if (elapsed <= 0) return r;
  r.measured = true;
  r.messages_per_s = per_second(after.published_messages, before->published_messages, r.interval_s);
  r.bytes_per_s = per_second(after.published_bytes, before->published_bytes, r.interval_s);
  for (std::size_t i = 0; i < after.producers.size(); ++i) {
    const ProducerStats& p = after.producers[i];
    const ProducerStats* old = find_slot(before->producers, p.slot);
    if (old != nullptr && same_occupant(*old, p)) {
      r.producer_messages_per_s[i] = per_second(p.published, old->published, r.interval_s);
    }
  }
  for (std::size_t i = 0; i < after.subscribers.size(); ++i) {
    const SubscriberStats& s = after.subscribers[i];
    const SubscriberStats* old = find_slot(before->subscribers, s.slot);
    if (old == nullptr || !same_occupant(*old, s)) continue;
    r.subscriber_messages_per_s[i] = per_second(s.received, old->received, r.interval_s);
    if (s.latency && old->latency) {
      r.subscriber_latency[i] = core::difference(*s.latency, *old->latency);
    }
  }
  return r;
}

double average_rate(std::uint64_t count, std::int64_t since_ns, std::int64_t now_ns) noexcept {
  if (since_ns <= 0 || now_ns <= since_ns) return 0;
  return static_cast<double>(count) / (static_cast<double>(now_ns - since_ns) / 1e9);
}

// --- latency ------------------------------------------------------------------------------------

LatencySummary summarize_latency(const core::LatencySnapshot& s) noexcept {
  LatencySummary l;
  l.count = s.count;
  l.p50_ns = core::latency_percentile(s, 0.5);
  l.p99_ns = core::latency_percentile(s, 0.99);
  l.p999_ns = core::latency_percentile(s, 0.999);
  l.max_ns = s.count == 0 ? 0 : s.max_ns;
  l.sum_ns = s.sum_ns;
  return l;
}

// --- words --------------------------------------------------------------------------------------

const char* journal_status(const ChannelStats& stats) noexcept {
  if (!stats.journal) return "none";
  return stats.journal->alive ? "recording" : "stopped";
}

std::string incarnation_hex(std::uint64_t incarnation) {
  return fmt::format("{:016x}", incarnation);
}

std::uint64_t alive_producers(const ChannelStats& stats) noexcept {
  return static_cast<std::uint64_t>(std::count_if(stats.producers.begin(), stats.producers.end(),
                                                  [](const ProducerStats& p) { return p.alive; }));
}

bool subscriber_running(const SubscriberStats& s) noexcept {
  return s.alive && s.state != SubscriberState::detached && s.state != SubscriberState::evicted &&
         s.state != SubscriberState::dead;
}

std::uint64_t journal_lag(const ChannelStats& stats) noexcept {
  if (!stats.journal || stats.head_sequence <= stats.journal->written_sequence) return 0;
  return stats.head_sequence - stats.journal->written_sequence;
}

std::vector<LiveProcess> live_processes(const ChannelStats& stats) {
  std::vector<LiveProcess> out;
  for (const ProducerStats& p : stats.producers) {
    if (p.alive) out.push_back({p.pid, "producer"});
  }
  for (const SubscriberStats& s : stats.subscribers) {
    if (!subscriber_running(s)) continue;
    out.push_back({s.pid, s.name.empty() ? std::string("subscriber")
                                         : fmt::format("subscriber '{}'", s.name)});
  }
  if (stats.journal && stats.journal->alive) out.push_back({stats.journal->pid, "journaler"});
  if (stats.creator_alive) out.push_back({stats.creator_pid, "creator"});
  return out;
}

// --- ls -----------------------------------------------------------------------------------------

std::string ls_json(const std::vector<LsEntry>& entries) {
  Json j;
  j["channels"] = Json::array();
  for (const LsEntry& e : entries) {
    Json c;
    c["name"] = e.name;
    if (!e.stats) {
      c["error"] = e.error;
      j["channels"].push_back(std::move(c));
      continue;
    }
    const ChannelStats& s = *e.stats;
    c["incarnation"] = incarnation_hex(s.incarnation);
    c["capacity"] = s.capacity;
    c["producers"] = alive_producers(s);
    c["subscribers"] = s.subscribers.size();
    c["head_sequence"] = s.head_sequence;
    c["published_messages"] = s.published_messages;
    c["messages_per_s"] = e.rates.messages_per_s;
    c["rates_measured"] = e.rates.measured;
    c["journal"] = journal_status(s);
    c["journal_durable_sequence"] = s.journal ? Json(s.journal->durable_sequence) : Json(nullptr);
    c["abandoned"] = s.abandoned;
    j["channels"].push_back(std::move(c));
  }
  return j.dump();
}

std::string ls_text(const std::vector<LsEntry>& entries) {
  if (entries.empty()) return "no channels\n";
  std::vector<std::vector<std::string>> rows{{"NAME", "CAPACITY", "PRODUCERS", "SUBSCRIBERS",
                                              "HEAD SEQ", "PUBLISHED", "RATE", "JOURNAL",
                                              "STATUS"}};
  for (const LsEntry& e : entries) {
    if (!e.stats) {
      rows.push_back({e.name, "-", "-", "-", "-", "-", "-", "-", "unreadable: " + e.error});
      continue;
    }
    const ChannelStats& s = *e.stats;
    std::string journal = journal_status(s);
    if (s.journal) journal += fmt::format(" (durable {})", s.journal->durable_sequence);
    rows.push_back({e.name, human_bytes(static_cast<double>(s.capacity)),
                    std::to_string(alive_producers(s)), std::to_string(s.subscribers.size()),
                    std::to_string(s.head_sequence),
                    human_count(static_cast<double>(s.published_messages)),
                    e.rates.measured ? human_rate(e.rates.messages_per_s) : "-", journal,
                    s.abandoned ? "abandoned" : "in use"});
  }
  return render_table(rows, {Align::left, Align::right, Align::right, Align::right, Align::right,
                             Align::right, Align::right, Align::left, Align::left});
}

// --- inspect ------------------------------------------------------------------------------------

std::string record_type_name(std::uint16_t type) {
  switch (static_cast<core::RecordType>(type)) {
    case core::RecordType::data: return "data";
    case core::RecordType::padding: return "padding";
    case core::RecordType::abandoned: return "abandoned";
    case core::RecordType::tagged: return "tagged";
  }
  return fmt::format("unknown({})", type);
}

std::vector<std::string> walk_verdict(const core::RingWalk& walk) {
  std::vector<std::string> lines;
  if (walk.problems.empty()) {
    if (walk.first_sequence == 0) {
      lines.push_back(fmt::format("walk: OK, {} records", walk.data_records));
    } else {
      lines.push_back(fmt::format("walk: OK, {} records from seq {} to {}", walk.data_records,
                                  walk.first_sequence, walk.last_sequence));
    }
  }
  for (const core::WalkProblem& p : walk.problems) {
    lines.push_back(fmt::format("PROBLEM at position {}: {}", p.position, p.what));
  }
  // Not a problem: commits are not in position order, and readers repair a stalled claim.
  if (walk.stopped_at_pending != UINT64_MAX && walk.committed_beyond_pending) {
    lines.push_back(fmt::format(
        "note: claim at position {} is not committed while later records are: a producer is "
        "slow or died mid-message (readers mark it abandoned after their abandon_timeout), or "
        "its header was damaged",
        walk.stopped_at_pending));
  }
  return lines;
}

}  // namespace shmbus::tools
