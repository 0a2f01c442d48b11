// render_table and stat_text (tools/observe_format.hpp): aligned tables, and one channel's read,
// rates and groups as a page for a human.
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

namespace detail {

std::vector<StatField> stat_fields(const ChannelStats& s, const ChannelRates& r) {
  std::vector<StatField> out;
  out.push_back({"ring", fmt::format("capacity {}, max message {}, {}",
                                     human_bytes(static_cast<double>(s.capacity)),
                                     human_bytes(static_cast<double>(s.max_message)),
                                     s.single_producer ? "single producer" : "multi-producer")});
  out.push_back(
      {"slots", fmt::format("{} subscriber, {} producer", s.subscriber_slots, s.producer_slots)});
  out.push_back({"created", fmt::format("{} by pid {} ({})", iso8601_utc_ns(s.created_ns),
                                        s.creator_pid, s.creator_alive ? "alive" : "gone")});
  out.push_back({"head", fmt::format("seq {}, position {}", s.head_sequence, s.head_position)});
  out.push_back({"published", fmt::format("{} messages, {}",
                                          human_count(static_cast<double>(s.published_messages)),
                                          human_bytes(static_cast<double>(s.published_bytes)))});
  const std::string average =
      human_rate(average_rate(s.published_messages, s.created_ns, s.sampled_ns));
  if (r.measured) {
    out.push_back(
        {"rate", fmt::format("{}, {}/s {}; average {} since created", human_rate(r.messages_per_s),
                             human_bytes(r.bytes_per_s), interval_words(r), average)});
  } else {
    out.push_back(
        {"rate", fmt::format("{}; average {} since created", interval_words(r), average)});
  }
  out.push_back(
      {"events", fmt::format("{} back-pressure, {} evictions, {} abandoned claims repaired",
                             s.back_pressure_events, s.evictions, s.abandoned_repaired)});
  if (s.journal) {
    const JournalStats& j = *s.journal;
    out.push_back(
        {"journal", fmt::format("{}: pid {}, dir {}, written seq {} ({} behind), durable "
                                "seq {}, heartbeat {}",
                                journal_status(s), j.pid, j.dir, j.written_sequence, journal_lag(s),
                                j.durable_sequence, human_age(s.sampled_ns, j.heartbeat_ns))});
  } else {
    out.push_back({"journal", "none"});
  }
  if (s.abandoned) {
    out.push_back({"ABANDONED", "no live process is attached ('shmbus gc' removes it)", true});
  }
  if (s.corrupt_slots > 0) {
    out.push_back({"CORRUPT",
                   fmt::format("{} slot{} of the control segment hold garbage (not shown)",
                               s.corrupt_slots, s.corrupt_slots == 1 ? "" : "s"),
                   true});
  }
  return out;
}

std::string producers_heading(const ChannelStats& s) {
  if (s.producers.empty()) return "producers: none attached";
  return fmt::format("producers ({} attached, {} alive)", s.producers.size(), alive_producers(s));
}

std::string subscribers_heading(const ChannelStats& s) {
  if (s.subscribers.empty()) return "subscribers: none";
  return fmt::format("subscribers ({})", s.subscribers.size());
}

StatTable producer_table(const ChannelStats& s, const ChannelRates& r) {
  StatTable t;
  t.rows.push_back(
      {"SLOT", "PID", "STATE", "PUBLISHED", "BYTES", "RATE", "AVG RATE", "CLAIM", "ATTACHED"});
  t.align = {Align::right, Align::right, Align::left, Align::right, Align::right,
             Align::right, Align::right, Align::left, Align::left};
  for (std::size_t i = 0; i < s.producers.size(); ++i) {
    const ProducerStats& p = s.producers[i];
    t.rows.push_back({std::to_string(p.slot), std::to_string(p.pid), p.alive ? "alive" : "dead",
                      human_count(static_cast<double>(p.published)),
                      human_bytes(static_cast<double>(p.published_bytes)),
                      human_rate(at_or(r.producer_messages_per_s, i, 0.0)),
                      human_rate(average_rate(p.published, p.attached_ns, s.sampled_ns)),
                      p.claim_in_flight ? "in flight" : "-",
                      human_age(s.sampled_ns, p.attached_ns)});
  }
  return t;
}

StatTable subscriber_table(const ChannelStats& s, const ChannelRates& r) {
  StatTable t;
  t.rows.push_back({"SLOT", "NAME", "PID", "STATE", "POLICY", "LAG", "LAG BYTES", "RECEIVED",
                    "LOST", "SPILLED", "EVICTED", "RATE", "HEARTBEAT"});
  t.align = {Align::right, Align::left,  Align::right, Align::left,  Align::left,
             Align::right, Align::right, Align::right, Align::right, Align::right,
             Align::right, Align::right, Align::left};
  for (std::size_t i = 0; i < s.subscribers.size(); ++i) {
    const SubscriberStats& sub = s.subscribers[i];
    t.rows.push_back({std::to_string(sub.slot), sub.name.empty() ? "-" : sub.name,
                      std::to_string(sub.pid), to_string(sub.state), to_string(sub.policy),
                      human_count(static_cast<double>(sub.lag_messages)),
                      human_bytes(static_cast<double>(sub.lag_bytes)),
                      human_count(static_cast<double>(sub.received)),
                      human_count(static_cast<double>(sub.lost)),
                      human_count(static_cast<double>(sub.spilled)), std::to_string(sub.evictions),
                      human_rate(at_or(r.subscriber_messages_per_s, i, 0.0)),
                      human_age(s.sampled_ns, sub.heartbeat_ns)});
  }
  return t;
}

StatTable latency_table(const ChannelStats& s, const ChannelRates& r, bool interval) {
  StatTable t;
  t.rows.push_back({"SLOT", "NAME", "WINDOW", "COUNT", "P50", "P99", "P99.9", "MAX"});
  t.align = {Align::right, Align::left,  Align::left,  Align::right,
             Align::right, Align::right, Align::right, Align::right};
  for (std::size_t i = 0; i < s.subscribers.size(); ++i) {
    const SubscriberStats& sub = s.subscribers[i];
    if (!sub.latency) continue;
    t.rows.push_back(latency_row(sub, "since attach", *sub.latency));
    if (interval && i < r.subscriber_latency.size() && r.subscriber_latency[i]) {
      t.rows.push_back(
          latency_row(sub, fmt::format("last {:.1f} s", r.interval_s), *r.subscriber_latency[i]));
    }
  }
  return t;
}

}  // namespace detail

std::string stat_text(const ChannelStats& s, const ChannelRates& r, bool watch,
                      const std::vector<GroupStats>& groups,
                      const std::vector<BridgeStats>& bridges) {
  std::string out;
  out += fmt::format("channel {}  incarnation {}\n", s.name, incarnation_hex(s.incarnation));
  for (const detail::StatField& f : detail::stat_fields(s, r)) {
    out += fmt::format("  {:<10} {}\n", f.label, f.text);
  }
  out += fmt::format("\n{}\n", detail::producers_heading(s));
  if (!s.producers.empty()) {
    const detail::StatTable t = detail::producer_table(s, r);
    out += render_table(t.rows, t.align, "  ");
  }
  out += fmt::format("\n{}\n", detail::subscribers_heading(s));
  if (!s.subscribers.empty()) {
    const detail::StatTable t = detail::subscriber_table(s, r);
    out += render_table(t.rows, t.align, "  ");
  }
  const detail::StatTable latency = detail::latency_table(s, r, watch);
  if (latency.rows.size() > 1) {
    out += fmt::format("\n{}\n", detail::kLatencyHeading);
    out += render_table(latency.rows, latency.align, "  ");
  }
  if (!groups.empty()) {
    out += fmt::format("\n{}\n", detail::groups_heading(groups));
    for (const GroupStats& g : groups) {
      out += fmt::format("  {}\n", detail::group_title(g));
      for (const detail::StatField& f : detail::group_fields(g)) {
        out += fmt::format("    {:<10} {}\n", f.label, f.text);
      }
      if (g.problem.empty() && !g.members.empty()) {
        const detail::StatTable t = detail::group_member_table(g, s.sampled_ns);
        out += render_table(t.rows, t.align, "    ");
      }
    }
  }
  out += detail::bridges_section(bridges, s.sampled_ns);
  return out;
}

}  // namespace shmbus::tools
