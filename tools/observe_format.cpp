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

Json latency_json(const core::LatencySnapshot& snapshot) {
  const LatencySummary l = summarize_latency(snapshot);
  Json j;
  j["count"] = l.count;
  j["p50_ns"] = l.p50_ns;
  j["p99_ns"] = l.p99_ns;
  j["p999_ns"] = l.p999_ns;
  j["max_ns"] = l.max_ns;
  j["sum_ns"] = l.sum_ns;
  return j;
}

Json optional_latency_json(const std::optional<core::LatencySnapshot>& snapshot) {
  return snapshot ? latency_json(*snapshot) : Json(nullptr);
}

template <class T>
T at_or(const std::vector<T>& v, std::size_t i, T fallback) {
  return i < v.size() ? v[i] : fallback;
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

// --- stat: JSON ---------------------------------------------------------------------------------

std::string stat_json(const ChannelStats& s, const ChannelRates& r) {
  Json j;
  j["channel"] = s.name;
  j["incarnation"] = incarnation_hex(s.incarnation);
  j["capacity"] = s.capacity;
  j["max_message"] = s.max_message;
  j["single_producer"] = s.single_producer;
  j["created_ns"] = s.created_ns;
  j["creator_pid"] = s.creator_pid;
  j["creator_alive"] = s.creator_alive;
  j["head_sequence"] = s.head_sequence;
  j["head_position"] = s.head_position;
  j["published_messages"] = s.published_messages;
  j["published_bytes"] = s.published_bytes;
  j["back_pressure_events"] = s.back_pressure_events;
  j["evictions"] = s.evictions;
  j["abandoned_repaired"] = s.abandoned_repaired;
  j["producers_attached"] = s.producers.size();
  j["corrupt_slots"] = s.corrupt_slots;
  j["abandoned"] = s.abandoned;
  j["sampled_ns"] = s.sampled_ns;
  j["interval_s"] = r.interval_s;
  j["rates_measured"] = r.measured;
  j["incarnation_changed"] = r.incarnation_changed;
  j["messages_per_s"] = r.messages_per_s;
  j["bytes_per_s"] = r.bytes_per_s;
  j["messages_per_s_avg"] = average_rate(s.published_messages, s.created_ns, s.sampled_ns);
  j["journal_status"] = journal_status(s);
  if (s.journal) {
    const JournalStats& jr = *s.journal;
    Json jj;
    jj["pid"] = jr.pid;
    jj["alive"] = jr.alive;
    jj["dir"] = jr.dir;
    jj["written_sequence"] = jr.written_sequence;
    jj["durable_sequence"] = jr.durable_sequence;
    jj["heartbeat_ns"] = jr.heartbeat_ns;
    jj["lag_messages"] = journal_lag(s);
    j["journal"] = std::move(jj);
  } else {
    j["journal"] = nullptr;
  }
  j["producers"] = Json::array();
  for (std::size_t i = 0; i < s.producers.size(); ++i) {
    const ProducerStats& p = s.producers[i];
    Json pj;
    pj["slot"] = p.slot;
    pj["pid"] = p.pid;
    pj["alive"] = p.alive;
    pj["attached_ns"] = p.attached_ns;
    pj["published"] = p.published;
    pj["published_bytes"] = p.published_bytes;
    pj["claim_in_flight"] = p.claim_in_flight;
    pj["messages_per_s"] = at_or(r.producer_messages_per_s, i, 0.0);
    pj["messages_per_s_avg"] = average_rate(p.published, p.attached_ns, s.sampled_ns);
    j["producers"].push_back(std::move(pj));
  }
  j["subscribers"] = Json::array();
  for (std::size_t i = 0; i < s.subscribers.size(); ++i) {
    const SubscriberStats& sub = s.subscribers[i];
    Json sj;
    sj["slot"] = sub.slot;
    sj["name"] = sub.name;
    sj["pid"] = sub.pid;
    sj["alive"] = sub.alive;
    sj["state"] = to_string(sub.state);
    sj["policy"] = to_string(sub.policy);
    sj["attached_ns"] = sub.attached_ns;
    sj["heartbeat_ns"] = sub.heartbeat_ns;
    sj["position"] = sub.position;
    sj["next_sequence"] = sub.next_sequence;
    sj["lag_messages"] = sub.lag_messages;
    sj["lag_bytes"] = sub.lag_bytes;
    sj["received"] = sub.received;
    sj["lost"] = sub.lost;
    sj["spilled"] = sub.spilled;
    sj["evictions"] = sub.evictions;
    sj["messages_per_s"] = at_or(r.subscriber_messages_per_s, i, 0.0);
    sj["messages_per_s_avg"] = average_rate(sub.received, sub.attached_ns, s.sampled_ns);
    sj["latency"] = optional_latency_json(sub.latency);
    sj["latency_interval"] =
        i < r.subscriber_latency.size() ? optional_latency_json(r.subscriber_latency[i]) : Json();
    j["subscribers"].push_back(std::move(sj));
  }
  return j.dump();
}

// --- stat: Prometheus ---------------------------------------------------------------------------

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\n': out += "\\n"; break;
      default: out += c;
    }
  }
  return out;
}

namespace {

// Builds the exposition text one family at a time; a family's # HELP and # TYPE lines are written
// with its first sample, so a family without samples leaves no trace.
class Exposition {
 public:
  explicit Exposition(std::string channel_label)
      : channel_(fmt::format("channel=\"{}\"", escape_label_value(channel_label))) {}

  void family(const char* name, const char* type, const char* help) {
    name_ = name;
    type_ = type;
    help_ = help;
    announced_ = false;
  }
  // A sample of the current family: `suffix` is appended to its name ("_sum"), `labels` (already
  // escaped, comma-separated, may be empty) follow the channel label.
  template <class V>
  void sample(V value, std::string_view labels = {}, std::string_view suffix = {}) {
    if (!announced_) {
      text_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name_, help_, name_, type_);
      announced_ = true;
    }
    text_ += fmt::format("{}{}{{{}{}{}}} {}\n", name_, suffix, channel_, labels.empty() ? "" : ",",
                         labels, value);
  }
  std::string take() { return std::move(text_); }

 private:
  std::string channel_;
  const char* name_ = "";
  const char* type_ = "";
  const char* help_ = "";
  bool announced_ = false;
  std::string text_;
};

std::string subscriber_labels(const SubscriberStats& s) {
  return fmt::format("slot=\"{}\",name=\"{}\",policy=\"{}\"", s.slot, escape_label_value(s.name),
                     to_string(s.policy));
}

double seconds(std::uint64_t ns) { return static_cast<double>(ns) / 1e9; }

}  // namespace

std::string stat_prometheus(const ChannelStats& s) {
  Exposition e(s.name);
  e.family("shmbus_published_messages_total", "counter",
           "Messages committed by the channel's producers since it was created.");
  e.sample(s.published_messages);
  e.family("shmbus_published_bytes_total", "counter",
           "Payload bytes of the messages committed since the channel was created.");
  e.sample(s.published_bytes);
  e.family("shmbus_head_sequence", "gauge", "The last sequence claimed on the channel.");
  e.sample(s.head_sequence);
  e.family("shmbus_back_pressure_events_total", "counter",
           "Times a producer found the ring full because a block subscriber lagged.");
  e.sample(s.back_pressure_events);
  e.family("shmbus_evictions_total", "counter",
           "Subscribers evicted after their process died and their liveness timeout passed.");
  e.sample(s.evictions);
  e.family("shmbus_abandoned_repaired_total", "counter",
           "Claims of stalled or dead producers marked abandoned by peers.");
  e.sample(s.abandoned_repaired);
  e.family("shmbus_capacity_bytes", "gauge", "Data bytes of the channel's ring.");
  e.sample(s.capacity);
  e.family("shmbus_producers", "gauge", "Attached producers whose process runs.");
  e.sample(alive_producers(s));
  e.family("shmbus_subscribers", "gauge", "Occupied subscriber slots (any state).");
  e.sample(s.subscribers.size());
  e.family("shmbus_abandoned", "gauge", "1 if no live process is attached to the channel.");
  e.sample(s.abandoned ? 1 : 0);
  e.family("shmbus_corrupt_slots", "gauge",
           "Occupied control-segment slots holding values no shmbus process writes.");
  e.sample(s.corrupt_slots);

  struct Counter {
    const char* name;
    const char* type;
    const char* help;
    std::uint64_t (*value)(const SubscriberStats&);
  };
  static constexpr Counter kSubscriberMetrics[] = {
      {"shmbus_subscriber_received_total", "counter", "Messages delivered to the subscriber.",
       [](const SubscriberStats& x) { return x.received; }},
      {"shmbus_subscriber_lost_total", "counter",
       "Sequences the subscriber lost (drop policy, abandoned claims).",
       [](const SubscriberStats& x) { return x.lost; }},
      {"shmbus_subscriber_spilled_total", "counter",
       "Messages delivered to the subscriber from the journal (spill policy).",
       [](const SubscriberStats& x) { return x.spilled; }},
      {"shmbus_subscriber_lag_messages", "gauge",
       "Sequences claimed on the channel that the subscriber has not consumed.",
       [](const SubscriberStats& x) { return x.lag_messages; }},
      {"shmbus_subscriber_lag_bytes", "gauge", "Ring bytes between the subscriber and the head.",
       [](const SubscriberStats& x) { return x.lag_bytes; }},
      {"shmbus_subscriber_alive", "gauge",
       "1 while the subscriber's process runs and its slot is attached, else 0.",
       [](const SubscriberStats& x) { return std::uint64_t{subscriber_running(x) ? 1u : 0u}; }},
  };
  std::vector<std::string> labels;
  for (const SubscriberStats& sub : s.subscribers) labels.push_back(subscriber_labels(sub));
  for (const Counter& m : kSubscriberMetrics) {
    e.family(m.name, m.type, m.help);
    for (std::size_t i = 0; i < s.subscribers.size(); ++i) {
      e.sample(m.value(s.subscribers[i]), labels[i]);
    }
  }

  e.family("shmbus_subscriber_latency_seconds", "summary",
           "End-to-end latency from publish to delivery since the subscriber attached (quantile "
           "1 is the maximum; quantiles within 1/64 relative error).");
  for (std::size_t i = 0; i < s.subscribers.size(); ++i) {
    if (!s.subscribers[i].latency) continue;
    const LatencySummary l = summarize_latency(*s.subscribers[i].latency);
    const std::pair<const char*, std::uint64_t> quantiles[] = {
        {"0.5", l.p50_ns}, {"0.99", l.p99_ns}, {"0.999", l.p999_ns}, {"1", l.max_ns}};
    for (const auto& [q, ns] : quantiles) {
      e.sample(seconds(ns), fmt::format("{},quantile=\"{}\"", labels[i], q));
    }
    e.sample(seconds(l.sum_ns), labels[i], "_sum");
    e.sample(l.count, labels[i], "_count");
  }

  if (s.journal) {
    e.family("shmbus_journal_written_sequence", "gauge",
             "Every sequence up to this one is in the journal files.");
    e.sample(s.journal->written_sequence);
    e.family("shmbus_journal_durable_sequence", "gauge",
             "Every sequence up to this one is in the journal files and fdatasync'ed.");
    e.sample(s.journal->durable_sequence);
    e.family("shmbus_journal_alive", "gauge", "1 while the journaler's process runs, else 0.");
    e.sample(s.journal->alive ? 1 : 0);
  }
  return e.take();
}

// --- tables -------------------------------------------------------------------------------------

std::string render_table(const std::vector<std::vector<std::string>>& rows,
                         const std::vector<Align>& align, std::string_view indent) {
  std::vector<std::size_t> width;
  for (const auto& row : rows) {
    if (row.size() > width.size()) width.resize(row.size(), 0);
    for (std::size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line(indent);
    for (std::size_t c = 0; c < row.size(); ++c) {
      const bool last = c + 1 == row.size();
      const bool right = c < align.size() && align[c] == Align::right;
      const std::size_t pad = width[c] - row[c].size();
      if (right) line.append(pad, ' ');
      line += row[c];
      if (!right && !last) line.append(pad, ' ');
      if (!last) line += "  ";
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line;
    out += '\n';
  }
  return out;
}

// --- stat: text ---------------------------------------------------------------------------------

namespace {

std::string interval_words(const ChannelRates& r) {
  if (r.incarnation_changed) return "the channel was re-created during the sample: no rates";
  if (!r.measured) return "no rates (a single read)";
  return fmt::format("over {:.2f} s", r.interval_s);
}

std::string latency_cell(std::uint64_t ns) {
  return human_duration_ns(static_cast<std::int64_t>(std::min<std::uint64_t>(ns, INT64_MAX)));
}

std::vector<std::string> latency_row(const SubscriberStats& sub, std::string window,
                                     const core::LatencySnapshot& snapshot) {
  const LatencySummary l = summarize_latency(snapshot);
  if (l.count == 0) {
    return {std::to_string(sub.slot), sub.name.empty() ? "-" : sub.name, std::move(window), "0",
            "-", "-", "-", "-"};
  }
  return {std::to_string(sub.slot), sub.name.empty() ? "-" : sub.name, std::move(window),
          human_count(static_cast<double>(l.count)), latency_cell(l.p50_ns),
          latency_cell(l.p99_ns), latency_cell(l.p999_ns), latency_cell(l.max_ns)};
}

}  // namespace

std::string stat_text(const ChannelStats& s, const ChannelRates& r, bool watch) {
  std::string out;
  out += fmt::format("channel {}  incarnation {}\n", s.name, incarnation_hex(s.incarnation));
  out += fmt::format("  ring       capacity {}, max message {}, {}\n",
                     human_bytes(static_cast<double>(s.capacity)),
                     human_bytes(static_cast<double>(s.max_message)),
                     s.single_producer ? "single producer" : "multi-producer");
  out += fmt::format("  created    {} by pid {} ({})\n", iso8601_utc_ns(s.created_ns),
                     s.creator_pid, s.creator_alive ? "alive" : "gone");
  out += fmt::format("  head       seq {}, position {}\n", s.head_sequence, s.head_position);
  out += fmt::format("  published  {} messages, {}\n",
                     human_count(static_cast<double>(s.published_messages)),
                     human_bytes(static_cast<double>(s.published_bytes)));
  if (r.measured) {
    out += fmt::format("  rate       {}, {}/s {}; average {} since created\n",
                       human_rate(r.messages_per_s), human_bytes(r.bytes_per_s), interval_words(r),
                       human_rate(average_rate(s.published_messages, s.created_ns, s.sampled_ns)));
  } else {
    out += fmt::format("  rate       {}; average {} since created\n", interval_words(r),
                       human_rate(average_rate(s.published_messages, s.created_ns, s.sampled_ns)));
  }
  out += fmt::format("  events     {} back-pressure, {} evictions, {} abandoned claims repaired\n",
                     s.back_pressure_events, s.evictions, s.abandoned_repaired);
  if (s.journal) {
    const JournalStats& j = *s.journal;
    out += fmt::format(
        "  journal    {}: pid {}, dir {}, written seq {} ({} behind), durable seq {}, "
        "heartbeat {}\n",
        journal_status(s), j.pid, j.dir, j.written_sequence, journal_lag(s), j.durable_sequence,
        human_age(s.sampled_ns, j.heartbeat_ns));
  } else {
    out += "  journal    none\n";
  }
  if (s.abandoned) out += "  ABANDONED  no live process is attached ('shmbus gc' removes it)\n";
  if (s.corrupt_slots > 0) {
    out += fmt::format("  CORRUPT    {} slot{} of the control segment hold garbage (not shown)\n",
                       s.corrupt_slots, s.corrupt_slots == 1 ? "" : "s");
  }

  out += '\n';
  if (s.producers.empty()) {
    out += "producers: none attached\n";
  } else {
    out += fmt::format("producers ({} attached, {} alive)\n", s.producers.size(),
                       alive_producers(s));
    std::vector<std::vector<std::string>> rows{
        {"SLOT", "PID", "STATE", "PUBLISHED", "BYTES", "RATE", "AVG RATE", "CLAIM", "ATTACHED"}};
    for (std::size_t i = 0; i < s.producers.size(); ++i) {
      const ProducerStats& p = s.producers[i];
      rows.push_back({std::to_string(p.slot), std::to_string(p.pid), p.alive ? "alive" : "dead",
                      human_count(static_cast<double>(p.published)),
                      human_bytes(static_cast<double>(p.published_bytes)),
                      human_rate(at_or(r.producer_messages_per_s, i, 0.0)),
                      human_rate(average_rate(p.published, p.attached_ns, s.sampled_ns)),
                      p.claim_in_flight ? "in flight" : "-",
                      human_age(s.sampled_ns, p.attached_ns)});
    }
    out += render_table(rows,
                        {Align::right, Align::right, Align::left, Align::right, Align::right,
                         Align::right, Align::right, Align::left, Align::left},
                        "  ");
  }

  out += '\n';
  if (s.subscribers.empty()) {
    out += "subscribers: none\n";
  } else {
    out += fmt::format("subscribers ({})\n", s.subscribers.size());
    std::vector<std::vector<std::string>> rows{{"SLOT", "NAME", "PID", "STATE", "POLICY", "LAG",
                                                "LAG BYTES", "RECEIVED", "LOST", "SPILLED",
                                                "EVICTED", "RATE", "HEARTBEAT"}};
    for (std::size_t i = 0; i < s.subscribers.size(); ++i) {
      const SubscriberStats& sub = s.subscribers[i];
      rows.push_back({std::to_string(sub.slot), sub.name.empty() ? "-" : sub.name,
                      std::to_string(sub.pid), to_string(sub.state), to_string(sub.policy),
                      human_count(static_cast<double>(sub.lag_messages)),
                      human_bytes(static_cast<double>(sub.lag_bytes)),
                      human_count(static_cast<double>(sub.received)),
                      human_count(static_cast<double>(sub.lost)),
                      human_count(static_cast<double>(sub.spilled)), std::to_string(sub.evictions),
                      human_rate(at_or(r.subscriber_messages_per_s, i, 0.0)),
                      human_age(s.sampled_ns, sub.heartbeat_ns)});
    }
    out += render_table(rows,
                        {Align::right, Align::left, Align::right, Align::left, Align::left,
                         Align::right, Align::right, Align::right, Align::right, Align::right,
                         Align::right, Align::right, Align::left},
                        "  ");
  }

  std::vector<std::vector<std::string>> latency{
      {"SLOT", "NAME", "WINDOW", "COUNT", "P50", "P99", "P99.9", "MAX"}};
  for (std::size_t i = 0; i < s.subscribers.size(); ++i) {
    const SubscriberStats& sub = s.subscribers[i];
    if (!sub.latency) continue;
    latency.push_back(latency_row(sub, "since attach", *sub.latency));
    if (watch && i < r.subscriber_latency.size() && r.subscriber_latency[i]) {
      latency.push_back(
          latency_row(sub, fmt::format("last {:.1f} s", r.interval_s), *r.subscriber_latency[i]));
    }
  }
  if (latency.size() > 1) {
    out += "\nlatency, publish to delivery (within 1/64)\n";
    out += render_table(latency,
                        {Align::right, Align::left, Align::left, Align::right, Align::right,
                         Align::right, Align::right, Align::right},
                        "  ");
  }
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
