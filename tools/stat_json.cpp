// stat_json (tools/observe_format.hpp): one channel's read, rates, consumer groups and bridges as
// one JSON document.
#include "tools/observe_format.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "tools/observe_internal.hpp"

namespace shmbus::tools {
namespace {

using Json = nlohmann::ordered_json;

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

// One consumer group, with GroupStats's names. A damaged group has its name and `problem` only.
Json group_json(const GroupStats& g) {
  Json j;
  j["group"] = g.group;
  j["problem"] = g.problem.empty() ? Json(nullptr) : Json(g.problem);
  if (!g.problem.empty()) return j;
  j["policy"] = to_string(g.policy);
  j["keyed"] = g.keyed;
  j["ack_timeout_ns"] = g.ack_timeout_ns;
  j["max_attempts"] = g.max_attempts;
  j["window"] = g.window;
  j["dead_letter_channel"] = g.dead_letter_channel;
  j["next_sequence"] = g.next_sequence;
  j["retired_through"] = g.retired_through;
  j["in_flight"] = g.in_flight;
  j["waiting_redelivery"] = g.waiting_redelivery;
  j["acked"] = g.acked;
  j["redelivered"] = g.redelivered;
  j["dead_lettered"] = g.dead_lettered;
  j["lost"] = g.lost;
  j["fenced"] = g.fenced;
  j["lag"] = g.lag;
  j["oldest_unacked_age_ns"] = g.oldest_unacked_age_ns;
  j["members"] = Json::array();
  for (const GroupMemberStats& m : g.members) {
    Json mj;
    mj["index"] = m.index;
    mj["pid"] = m.pid;
    mj["alive"] = m.alive;
    mj["joined_ns"] = m.joined_ns;
    mj["delivered"] = m.delivered;
    mj["acked"] = m.acked;
    mj["nacked"] = m.nacked;
    mj["redelivered"] = m.redelivered;
    mj["fenced"] = m.fenced;
    mj["in_flight"] = m.in_flight;
    j["members"].push_back(std::move(mj));
  }
  return j;
}

}  // namespace

std::string stat_json(const ChannelStats& s, const ChannelRates& r,
                      const std::vector<GroupStats>& groups,
                      const std::vector<BridgeStats>& bridges) {
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
  j["subscriber_slots"] = s.subscriber_slots;
  j["producer_slots"] = s.producer_slots;
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
    pj["messages_per_s"] = detail::at_or(r.producer_messages_per_s, i, 0.0);
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
    sj["messages_per_s"] = detail::at_or(r.subscriber_messages_per_s, i, 0.0);
    sj["messages_per_s_avg"] = average_rate(sub.received, sub.attached_ns, s.sampled_ns);
    sj["latency"] = optional_latency_json(sub.latency);
    sj["latency_interval"] =
        i < r.subscriber_latency.size() ? optional_latency_json(r.subscriber_latency[i]) : Json();
    j["subscribers"].push_back(std::move(sj));
  }
  j["groups"] = Json::array();
  for (const GroupStats& g : groups) j["groups"].push_back(group_json(g));
  j["bridges"] = detail::bridges_json(bridges);
  // Names come from other processes and from /dev/shm: bytes that are not UTF-8 are replaced
  // (U+FFFD) rather than failing the whole document.
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace shmbus::tools
