// stat_prometheus and escape_label_value (tools/observe_format.hpp): one channel's read, its
// consumer groups and its bridges in the Prometheus text exposition format.
#include "tools/observe_format.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

namespace shmbus::tools {

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
  return out;
}

namespace {

// Builds the exposition text one family at a time; a family's # HELP and # TYPE lines are written
// with its first sample, so a family without samples leaves no trace.
class Exposition {
 public:
  void family(const char* name, const char* type, const char* help) {
    name_ = name;
    type_ = type;
    help_ = help;
    announced_ = false;
  }
  // A sample of the current family for `channel`: `suffix` is appended to its name ("_sum"),
  // `labels` (already escaped, comma-separated, may be empty) follow the channel label.
  template <class V>
  void sample(const std::string& channel, V value, std::string_view labels = {},
              std::string_view suffix = {}) {
    if (!announced_) {
      text_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name_, help_, name_, type_);
      announced_ = true;
    }
    text_ += fmt::format("{}{}{{channel=\"{}\"{}{}}} {}\n", name_, suffix,
                         escape_label_value(channel), labels.empty() ? "" : ",", labels, value);
  }
  std::string take() { return std::move(text_); }

 private:
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

// A metric with one value per channel, or per subscriber, or per channel with a journal.
template <class Of>
struct MetricFamily {
  const char* name;
  const char* type;
  const char* help;
  std::uint64_t (*value)(const Of&);
};

constexpr MetricFamily<ChannelStats> kChannelMetrics[] = {
    {"shmbus_published_messages_total", "counter",
     "Messages committed by the channel's producers since it was created.",
     [](const ChannelStats& s) { return s.published_messages; }},
    {"shmbus_published_bytes_total", "counter",
     "Payload bytes of the messages committed since the channel was created.",
     [](const ChannelStats& s) { return s.published_bytes; }},
    {"shmbus_head_sequence", "gauge", "The last sequence claimed on the channel.",
     [](const ChannelStats& s) { return s.head_sequence; }},
    {"shmbus_back_pressure_events_total", "counter",
     "Times a producer found the ring full because a block subscriber lagged.",
     [](const ChannelStats& s) { return s.back_pressure_events; }},
    {"shmbus_evictions_total", "counter",
     "Subscribers evicted after their process died and their liveness timeout passed.",
     [](const ChannelStats& s) { return s.evictions; }},
    {"shmbus_abandoned_repaired_total", "counter",
     "Claims of stalled or dead producers marked abandoned by peers.",
     [](const ChannelStats& s) { return s.abandoned_repaired; }},
    {"shmbus_capacity_bytes", "gauge", "Data bytes of the channel's ring.",
     [](const ChannelStats& s) { return s.capacity; }},
    {"shmbus_producers", "gauge", "Attached producers whose process runs.",
     [](const ChannelStats& s) { return alive_producers(s); }},
    {"shmbus_subscribers", "gauge", "Occupied subscriber slots (any state).",
     [](const ChannelStats& s) { return std::uint64_t{s.subscribers.size()}; }},
    {"shmbus_subscriber_slots", "gauge", "Subscriber slots of the channel, occupied or not.",
     [](const ChannelStats& s) { return std::uint64_t{s.subscriber_slots}; }},
    {"shmbus_producer_slots", "gauge", "Producer slots of the channel, occupied or not.",
     [](const ChannelStats& s) { return std::uint64_t{s.producer_slots}; }},
    {"shmbus_abandoned", "gauge", "1 if no live process is attached to the channel.",
     [](const ChannelStats& s) { return std::uint64_t{s.abandoned ? 1u : 0u}; }},
    {"shmbus_corrupt_slots", "gauge",
     "Occupied control-segment slots holding values no shmbus process writes.",
     [](const ChannelStats& s) { return std::uint64_t{s.corrupt_slots}; }},
};

constexpr MetricFamily<SubscriberStats> kSubscriberMetrics[] = {
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

constexpr MetricFamily<JournalStats> kJournalMetrics[] = {
    {"shmbus_journal_written_sequence", "gauge",
     "Every sequence up to this one is in the journal files.",
     [](const JournalStats& j) { return j.written_sequence; }},
    {"shmbus_journal_durable_sequence", "gauge",
     "Every sequence up to this one is in the journal files and fdatasync'ed.",
     [](const JournalStats& j) { return j.durable_sequence; }},
    {"shmbus_journal_alive", "gauge", "1 while the journaler's process runs, else 0.",
     [](const JournalStats& j) { return std::uint64_t{j.alive ? 1u : 0u}; }},
};

// Per consumer group (only groups that read without a problem), labelled channel and group.
constexpr MetricFamily<GroupStats> kGroupMetrics[] = {
    {"shmbus_group_members", "gauge", "Members of the group (alive or not yet found dead).",
     [](const GroupStats& g) { return std::uint64_t{g.members.size()}; }},
    {"shmbus_group_in_flight", "gauge", "Records delivered to a member and not yet acked.",
     [](const GroupStats& g) { return g.in_flight; }},
    {"shmbus_group_waiting_redelivery", "gauge",
     "Records taken back from a member (timeout, departure, death) awaiting redelivery.",
     [](const GroupStats& g) { return g.waiting_redelivery; }},
    {"shmbus_group_acked_total", "counter", "Records acked by the group's members.",
     [](const GroupStats& g) { return g.acked; }},
    {"shmbus_group_redelivered_total", "counter", "Deliveries that were redeliveries.",
     [](const GroupStats& g) { return g.redelivered; }},
    {"shmbus_group_dead_lettered_total", "counter",
     "Records sent to the dead-letter channel after max_attempts deliveries.",
     [](const GroupStats& g) { return g.dead_lettered; }},
    {"shmbus_group_lost_total", "counter",
     "Records a spill group needed that were neither in the ring nor in the journal.",
     [](const GroupStats& g) { return g.lost; }},
    {"shmbus_group_fenced_total", "counter",
     "Late acks refused because the record had been taken back from the member.",
     [](const GroupStats& g) { return g.fenced; }},
    {"shmbus_group_lag_messages", "gauge",
     "Records published on the channel and not yet handed out by the group.",
     [](const GroupStats& g) { return g.lag; }},
    {"shmbus_group_retired_through", "gauge",
     "Every sequence below this one is acked, dead-lettered or lost.",
     [](const GroupStats& g) { return g.retired_through; }},
    {"shmbus_group_next_sequence", "gauge", "The next sequence the group hands out.",
     [](const GroupStats& g) { return g.next_sequence; }},
    {"shmbus_group_max_attempts", "gauge",
     "Deliveries of one record before it goes to the dead-letter channel (a setting).",
     [](const GroupStats& g) { return std::uint64_t{g.max_attempts}; }},
    {"shmbus_group_window", "gauge",
     "Records the group may have delivered but not yet retired (a setting).",
     [](const GroupStats& g) { return std::uint64_t{g.window}; }},
};

// Per member of a group, labelled channel, group and member (its index in the group).
constexpr MetricFamily<GroupMemberStats> kGroupMemberMetrics[] = {
    {"shmbus_group_member_alive", "gauge", "1 while the member's process runs, else 0.",
     [](const GroupMemberStats& m) { return std::uint64_t{m.alive ? 1u : 0u}; }},
    {"shmbus_group_member_in_flight", "gauge", "Records the member holds now.",
     [](const GroupMemberStats& m) { return m.in_flight; }},
    {"shmbus_group_member_delivered_total", "counter",
     "Records delivered to the member, redeliveries included.",
     [](const GroupMemberStats& m) { return m.delivered; }},
    {"shmbus_group_member_acked_total", "counter", "Records the member acked.",
     [](const GroupMemberStats& m) { return m.acked; }},
    {"shmbus_group_member_nacked_total", "counter", "Records the member nacked.",
     [](const GroupMemberStats& m) { return m.nacked; }},
    {"shmbus_group_member_redelivered_total", "counter",
     "Of the records delivered to the member, how many were redeliveries.",
     [](const GroupMemberStats& m) { return m.redelivered; }},
    {"shmbus_group_member_fenced_total", "counter", "The member's late acks that were refused.",
     [](const GroupMemberStats& m) { return m.fenced; }},
};

std::string group_labels(const GroupStats& g) {
  return fmt::format("group=\"{}\"", escape_label_value(g.group));
}

// The group families of every channel: its groups are groups[c] (none when missing).
void add_group_families(Exposition& e, const std::vector<ChannelStats>& channels,
                        const std::vector<std::vector<GroupStats>>& groups) {
  const auto each_group = [&](const auto& visit) {
    for (std::size_t c = 0; c < channels.size() && c < groups.size(); ++c) {
      for (const GroupStats& g : groups[c]) visit(channels[c], g);
    }
  };
  e.family("shmbus_group_damaged", "gauge",
           "1 if the group's shared state failed validation (its other metrics are then left "
           "out), else 0.");
  each_group([&](const ChannelStats& s, const GroupStats& g) {
    e.sample(s.name, g.problem.empty() ? 0 : 1, group_labels(g));
  });
  e.family("shmbus_group_info", "gauge",
           "1 for each group, with its settings as labels: policy, keyed, dead_letter_channel.");
  each_group([&](const ChannelStats& s, const GroupStats& g) {
    if (!g.problem.empty()) return;
    e.sample(s.name, 1,
             fmt::format("{},policy=\"{}\",keyed=\"{}\",dead_letter_channel=\"{}\"",
                         group_labels(g), to_string(g.policy), g.keyed ? "true" : "false",
                         escape_label_value(g.dead_letter_channel)));
  });
  for (const auto& m : kGroupMetrics) {
    e.family(m.name, m.type, m.help);
    each_group([&](const ChannelStats& s, const GroupStats& g) {
      if (g.problem.empty()) e.sample(s.name, m.value(g), group_labels(g));
    });
  }
  e.family("shmbus_group_ack_timeout_seconds", "gauge",
           "A record not acked this long after its delivery is taken back (a setting).");
  each_group([&](const ChannelStats& s, const GroupStats& g) {
    if (g.problem.empty()) {
      e.sample(s.name, seconds(static_cast<std::uint64_t>(std::max<std::int64_t>(
                           g.ack_timeout_ns, 0))),
               group_labels(g));
    }
  });
  e.family("shmbus_group_oldest_unacked_age_seconds", "gauge",
           "How long ago the oldest record in flight was delivered; 0 when none is in flight.");
  each_group([&](const ChannelStats& s, const GroupStats& g) {
    if (g.problem.empty()) {
      e.sample(s.name, seconds(static_cast<std::uint64_t>(std::max<std::int64_t>(
                           g.oldest_unacked_age_ns, 0))),
               group_labels(g));
    }
  });
  for (const auto& m : kGroupMemberMetrics) {
    e.family(m.name, m.type, m.help);
    each_group([&](const ChannelStats& s, const GroupStats& g) {
      if (!g.problem.empty()) return;
      for (const GroupMemberStats& member : g.members) {
        e.sample(s.name, m.value(member),
                 fmt::format("{},member=\"{}\"", group_labels(g), member.index));
      }
    });
  }
}

// Per bridge (only bridges that read without a problem), labelled channel, role and stream.
constexpr MetricFamily<BridgeStats> kBridgeMetrics[] = {
    {"shmbus_bridge_alive", "gauge", "1 while the bridge's process runs, else 0.",
     [](const BridgeStats& b) { return std::uint64_t{b.alive ? 1u : 0u}; }},
    {"shmbus_bridge_window", "gauge", "Bridge out: the most unacknowledged publishes allowed.",
     [](const BridgeStats& b) { return b.window; }},
    {"shmbus_bridge_in_flight", "gauge", "Bridge out: records published, not yet acknowledged.",
     [](const BridgeStats& b) { return b.in_flight; }},
    {"shmbus_bridge_acked_through", "gauge",
     "Bridge out: every sequence up to this one is stored in the stream.",
     [](const BridgeStats& b) { return b.acked_through; }},
    {"shmbus_bridge_head_sequence", "gauge",
     "Bridge out: the channel's last claimed sequence when the bridge last looked.",
     [](const BridgeStats& b) { return b.head_sequence; }},
    {"shmbus_bridge_published_total", "counter",
     "Bridge out: records and GAP records the stream acknowledged.",
     [](const BridgeStats& b) { return b.published; }},
    {"shmbus_bridge_applied_total", "counter",
     "Bridge in: records committed into the local channel.",
     [](const BridgeStats& b) { return b.applied; }},
    {"shmbus_bridge_resends_total", "counter",
     "Bridge out: publishes sent again after an error or a missing ack.",
     [](const BridgeStats& b) { return b.resends; }},
    {"shmbus_bridge_recoveries_total", "counter",
     "Recovery passes (error acks, ack timeouts, reconnections).",
     [](const BridgeStats& b) { return b.recoveries; }},
    {"shmbus_bridge_gaps_total", "counter",
     "GAP records: published to the stream (out) or laid out in the channel (in).",
     [](const BridgeStats& b) { return b.gaps; }},
    {"shmbus_bridge_gap_sequences_total", "counter", "Sequences those GAP records cover.",
     [](const BridgeStats& b) { return b.gap_sequences; }},
    {"shmbus_bridge_duplicates_total", "counter",
     "Bridge in: redelivered messages that were already applied.",
     [](const BridgeStats& b) { return b.duplicates; }},
    {"shmbus_bridge_own_skipped_total", "counter",
     "Bridge in: messages that came from this host, never applied (no loops).",
     [](const BridgeStats& b) { return b.own_skipped; }},
    {"shmbus_bridge_stream_gaps_total", "counter",
     "Bridge in: origin sequences the stream discarded before they were read.",
     [](const BridgeStats& b) { return b.stream_gaps; }},
    {"shmbus_bridge_invalid_total", "counter",
     "Bridge in: messages without valid shmbus headers (acked, never applied).",
     [](const BridgeStats& b) { return b.invalid; }},
    {"shmbus_bridge_lag_records", "gauge",
     "Records the bridge is behind (out: head - acked; in: pending in the stream).",
     [](const BridgeStats& b) { return b.lag_records; }},
    {"shmbus_bridge_origin_sequence", "gauge",
     "Bridge in: the origin sequence of the last applied record.",
     [](const BridgeStats& b) { return b.origin_seq; }},
    {"shmbus_bridge_stream_sequence", "gauge",
     "Bridge in: the stream sequence of the last applied record.",
     [](const BridgeStats& b) { return b.stream_seq; }},
};

std::string bridge_labels(const BridgeStats& b) {
  return fmt::format("role=\"{}\",stream=\"{}\"", escape_label_value(b.role),
                     escape_label_value(b.name));
}

// The bridge families of every channel: its bridges are bridges[c] (none when missing).
void add_bridge_families(Exposition& e, const std::vector<ChannelStats>& channels,
                         const std::vector<std::vector<BridgeStats>>& bridges) {
  const auto each_bridge = [&](const auto& visit) {
    for (std::size_t c = 0; c < channels.size() && c < bridges.size(); ++c) {
      for (const BridgeStats& b : bridges[c]) visit(channels[c], b);
    }
  };
  e.family("shmbus_bridge_damaged", "gauge",
           "1 if the bridge's shared state failed validation (its other metrics are then left "
           "out), else 0.");
  each_bridge([&](const ChannelStats& s, const BridgeStats& b) {
    e.sample(s.name, b.problem.empty() ? 0 : 1, bridge_labels(b));
  });
  e.family("shmbus_bridge_info", "gauge",
           "1 for each bridge, with its state and settings as labels: state, subject, url, host.");
  each_bridge([&](const ChannelStats& s, const BridgeStats& b) {
    if (!b.problem.empty()) return;
    e.sample(s.name, 1,
             fmt::format("{},state=\"{}\",subject=\"{}\",url=\"{}\",host=\"{}\"", bridge_labels(b),
                         escape_label_value(b.state), escape_label_value(b.subject),
                         escape_label_value(b.url), escape_label_value(b.host)));
  });
  for (const auto& m : kBridgeMetrics) {
    e.family(m.name, m.type, m.help);
    each_bridge([&](const ChannelStats& s, const BridgeStats& b) {
      if (b.problem.empty()) e.sample(s.name, m.value(b), bridge_labels(b));
    });
  }
  e.family("shmbus_bridge_lag_seconds", "gauge",
           "How far behind the bridge is in time (out: age of the oldest unacknowledged record; "
           "in: age of the last applied record while behind, else 0).");
  each_bridge([&](const ChannelStats& s, const BridgeStats& b) {
    if (b.problem.empty()) e.sample(s.name, seconds(b.lag_ns), bridge_labels(b));
  });
}

}  // namespace

std::string stat_prometheus(const ChannelStats& s, const std::vector<GroupStats>& groups,
                            const std::vector<BridgeStats>& bridges) {
  return stat_prometheus_all({s}, {groups}, {bridges});
}

std::string stat_prometheus_all(const std::vector<ChannelStats>& channels,
                                const std::vector<std::vector<GroupStats>>& groups,
                                const std::vector<std::vector<BridgeStats>>& bridges) {
  Exposition e;
  for (const auto& m : kChannelMetrics) {
    e.family(m.name, m.type, m.help);
    for (const ChannelStats& s : channels) e.sample(s.name, m.value(s));
  }

  std::vector<std::vector<std::string>> labels;  // [channel][subscriber]
  for (const ChannelStats& s : channels) {
    labels.emplace_back();
    for (const SubscriberStats& sub : s.subscribers)
      labels.back().push_back(subscriber_labels(sub));
  }
  for (const auto& m : kSubscriberMetrics) {
    e.family(m.name, m.type, m.help);
    for (std::size_t c = 0; c < channels.size(); ++c) {
      for (std::size_t i = 0; i < channels[c].subscribers.size(); ++i) {
        e.sample(channels[c].name, m.value(channels[c].subscribers[i]), labels[c][i]);
      }
    }
  }

  e.family("shmbus_subscriber_latency_seconds", "summary",
           "End-to-end latency from publish to delivery since the subscriber attached (quantile "
           "1 is the maximum; quantiles within 1/64 relative error).");
  for (std::size_t c = 0; c < channels.size(); ++c) {
    const ChannelStats& s = channels[c];
    for (std::size_t i = 0; i < s.subscribers.size(); ++i) {
      if (!s.subscribers[i].latency) continue;
      const LatencySummary l = summarize_latency(*s.subscribers[i].latency);
      const std::pair<const char*, std::uint64_t> quantiles[] = {
          {"0.5", l.p50_ns}, {"0.99", l.p99_ns}, {"0.999", l.p999_ns}, {"1", l.max_ns}};
      for (const auto& [q, ns] : quantiles) {
        e.sample(s.name, seconds(ns), fmt::format("{},quantile=\"{}\"", labels[c][i], q));
      }
      e.sample(s.name, seconds(l.sum_ns), labels[c][i], "_sum");
      e.sample(s.name, l.count, labels[c][i], "_count");
    }
  }

  for (const auto& m : kJournalMetrics) {
    e.family(m.name, m.type, m.help);
    for (const ChannelStats& s : channels) {
      if (s.journal) e.sample(s.name, m.value(*s.journal));
    }
  }
  add_group_families(e, channels, groups);
  add_bridge_families(e, channels, bridges);
  return e.take();
}

}  // namespace shmbus::tools
