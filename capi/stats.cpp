// A channel's statistics from C: read_channel_stats (include/shmbus/stats.hpp) as C structs.
#include <memory>
#include <optional>
#include <vector>

#include "capi/errors.hpp"
#include "capi/handles.hpp"
#include "shmbus/stats.hpp"

namespace shmbus::capi {
namespace {

// The snapshot a caller gets: the C view (the base, what the caller sees) and the C++ stats whose
// strings it points into, in one allocation freed by shmbus_channel_stats_free.
struct StatsSnapshot : shmbus_channel_stats {
  ChannelStats stats;
  std::vector<shmbus_producer_stats> producers;
  std::vector<shmbus_subscriber_stats> subscribers;
  shmbus_journal_stats journal_view{};
};

shmbus_subscriber_stats subscriber_view(const SubscriberStats& s) {
  shmbus_subscriber_stats v{};
  v.slot = s.slot;
  v.name = s.name.c_str();
  v.pid = s.pid;
  v.alive = s.alive ? 1 : 0;
  v.policy = static_cast<int>(s.policy);
  v.state = static_cast<int>(s.state);  // SHMBUS_STATE_* follow SubscriberState's order
  v.attached_ns = s.attached_ns;
  v.heartbeat_ns = s.heartbeat_ns;
  v.position = s.position;
  v.next_sequence = s.next_sequence;
  v.lag_messages = s.lag_messages;
  v.lag_bytes = s.lag_bytes;
  v.received = s.received;
  v.lost = s.lost;
  v.spilled = s.spilled;
  v.evictions = s.evictions;
  if (s.latency) {
    v.has_latency = 1;
    v.latency_count = s.latency->count;
    v.latency_p50_ns = core::latency_percentile(*s.latency, 0.5);
    v.latency_p99_ns = core::latency_percentile(*s.latency, 0.99);
    v.latency_max_ns = s.latency->max_ns;
  }
  return v;
}

shmbus_producer_stats producer_view(const ProducerStats& p) {
  shmbus_producer_stats v{};
  v.slot = p.slot;
  v.pid = p.pid;
  v.alive = p.alive ? 1 : 0;
  v.claim_in_flight = p.claim_in_flight ? 1 : 0;
  v.attached_ns = p.attached_ns;
  v.published = p.published;
  v.published_bytes = p.published_bytes;
  return v;
}

static_assert(SHMBUS_STATE_ALIVE == static_cast<int>(SubscriberState::alive) &&
              SHMBUS_STATE_LAGGING == static_cast<int>(SubscriberState::lagging) &&
              SHMBUS_STATE_LAPPED == static_cast<int>(SubscriberState::lapped) &&
              SHMBUS_STATE_DEAD == static_cast<int>(SubscriberState::dead) &&
              SHMBUS_STATE_EVICTED == static_cast<int>(SubscriberState::evicted) &&
              SHMBUS_STATE_DETACHED == static_cast<int>(SubscriberState::detached));
static_assert(SHMBUS_POLICY_BLOCK == static_cast<int>(Policy::block) &&
              SHMBUS_POLICY_DROP == static_cast<int>(Policy::drop) &&
              SHMBUS_POLICY_SPILL == static_cast<int>(Policy::spill));
static_assert(SHMBUS_START_LATEST == static_cast<int>(StartFrom::latest) &&
              SHMBUS_START_EARLIEST == static_cast<int>(StartFrom::earliest) &&
              SHMBUS_START_SEQUENCE == static_cast<int>(StartFrom::sequence));

}  // namespace
}  // namespace shmbus::capi

extern "C" {

int shmbus_channel_stats_read(const char* channel, shmbus_channel_stats** out) {
  return shmbus::capi::guarded([&]() -> int {
    if (channel == nullptr || out == nullptr) {
      return shmbus::capi::fail(EINVAL, "shmbus_channel_stats_read: channel and out must not be NULL");
    }
    *out = nullptr;
    auto read = shmbus::read_channel_stats(channel);
    if (!read) return shmbus::capi::fail(read.error());
    auto snap = std::make_unique<shmbus::capi::StatsSnapshot>();
    snap->stats = std::move(*read);
    const shmbus::ChannelStats& s = snap->stats;
    for (const auto& p : s.producers) snap->producers.push_back(shmbus::capi::producer_view(p));
    for (const auto& x : s.subscribers) {
      snap->subscribers.push_back(shmbus::capi::subscriber_view(x));
    }
    shmbus_channel_stats& c = *snap;
    c = shmbus_channel_stats{};
    c.name = s.name.c_str();
    c.incarnation = s.incarnation;
    c.capacity = s.capacity;
    c.max_message = s.max_message;
    c.single_producer = s.single_producer ? 1 : 0;
    c.subscriber_slots = s.subscriber_slots;
    c.producer_slots = s.producer_slots;
    c.created_ns = s.created_ns;
    c.creator_pid = s.creator_pid;
    c.creator_alive = s.creator_alive ? 1 : 0;
    c.head_position = s.head_position;
    c.head_sequence = s.head_sequence;
    c.published_messages = s.published_messages;
    c.published_bytes = s.published_bytes;
    c.back_pressure_events = s.back_pressure_events;
    c.evictions = s.evictions;
    c.abandoned_repaired = s.abandoned_repaired;
    c.corrupt_slots = s.corrupt_slots;
    c.abandoned = s.abandoned ? 1 : 0;
    c.sampled_ns = s.sampled_ns;
    c.sampled_monotonic_ns = s.sampled_monotonic_ns;
    c.producer_count = snap->producers.size();
    c.producers = snap->producers.data();
    c.subscriber_count = snap->subscribers.size();
    c.subscribers = snap->subscribers.data();
    if (s.journal) {
      shmbus_journal_stats& j = snap->journal_view;
      j.pid = s.journal->pid;
      j.alive = s.journal->alive ? 1 : 0;
      j.dir = s.journal->dir.c_str();
      j.written_sequence = s.journal->written_sequence;
      j.durable_sequence = s.journal->durable_sequence;
      j.heartbeat_ns = s.journal->heartbeat_ns;
      c.journal = &j;
    }
    *out = snap.release();
    return 0;
  });
}

void shmbus_channel_stats_free(shmbus_channel_stats* stats) {
  // Every snapshot handed out is a StatsSnapshot (shmbus_channel_stats_read).
  delete static_cast<shmbus::capi::StatsSnapshot*>(stats);
}

}  // extern "C"
