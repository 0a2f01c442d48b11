// render_table and stat_text (tools/observe_format.hpp): aligned tables, and one channel's read
// and rates as a page for a human.
#include "tools/observe_format.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "tools/format.hpp"
#include "tools/observe_internal.hpp"

namespace shmbus::tools {

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
  out += fmt::format("  slots      {} subscriber, {} producer\n", s.subscriber_slots,
                     s.producer_slots);
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
                      human_rate(detail::at_or(r.producer_messages_per_s, i, 0.0)),
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
                      human_rate(detail::at_or(r.subscriber_messages_per_s, i, 0.0)),
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

}  // namespace shmbus::tools
