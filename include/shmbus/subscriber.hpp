// The consumer side of a channel: poll from your own position, under a slow-subscriber policy.
//
//   shmbus::SubscriberOptions options;
//   options.policy = shmbus::Policy::block;
//   auto sub = shmbus::Subscriber::open("md.eurusd", options).value();
//   sub.poll([](const shmbus::Message& m) { handle(m.sequence, m.payload); });
//
// poll() never throws, allocates nothing, takes no lock and makes no system call on the ring path
// (tests/core/hot_path_test.cpp counts them). It is inline, so the handler inlines into the walk
// over the ring; the spill policy's catch-up from the journal files is its one slow path.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "detail/core_headers.hpp"
#include "options.hpp"
#include "result.hpp"

namespace shmbus {

struct Message {
  std::uint64_t sequence;
  std::int64_t timestamp_ns;  // publish time, nanoseconds since the Unix epoch
  std::span<const std::byte> payload;  // valid until the next poll
  std::uint64_t lost_before;  // sequences lost just before this one (drop policy, abandoned claims)
  std::span<const std::byte> key{};  // the record's key (Publisher's RecordTag); empty when none
  std::uint16_t message_type = 0;    // the record's application message type; 0 when none
};

enum class PollStatus : std::uint8_t {
  ok,       // zero or more messages delivered
  corrupt,  // the ring holds a record no shmbus writer produces; see last_error()
  evicted,  // this subscriber was evicted; reopen it
  // Spill policy: the journal could not provide the next sequence (the journaler is gone, the
  // journal is damaged or no longer holds it); the subscriber skipped ahead in the ring as a drop
  // subscriber does, and the next message's lost_before counts the sequences skipped.
  // last_error() says why. Polling goes on (the status returns to ok with the next message).
  journal_unavailable,
};

namespace detail {

struct SubscriberSlowState;  // ipc/subscriber_state.hpp: what poll does not touch per message
struct GroupAccess;          // ipc/group_consumer.cpp: a group's gate is a Subscriber

// SubscriberOptions::filter as poll applies it. The bytes it points at belong to the subscriber's
// slow state (SubscriberSlowState::filter_key, filter_types), which never moves.
struct PollFilter {
  bool active = false;
  bool by_key = false;
  std::uint16_t key_length = 0;
  const std::byte* key = nullptr;
  const std::uint64_t* types = nullptr;  // a bit per message type, null: any type
  std::uint64_t carried_lost = 0;  // lost_before of skipped records, for the next one delivered

  bool matches(const std::byte* record_key, std::uint16_t record_key_length,
               std::uint16_t message_type) const noexcept {
    if (by_key && (record_key_length != key_length ||
                   (key_length != 0 && std::memcmp(record_key, key, key_length) != 0))) {
      return false;
    }
    return types == nullptr || ((types[message_type >> 6] >> (message_type & 63)) & 1) != 0;
  }
};

// What Subscriber::poll touches on every call, kept inline in the Subscriber.
struct PollState {
  core::RingReader reader;
  std::byte* copy_buffer = nullptr;  // drop and spill: frames are copied here, then validated
  std::size_t copy_buffer_size = 0;
  core::LatencyHistogram* latency = nullptr;  // SubscriberOptions::latency_histogram
  std::uint64_t skip_below = 0;  // StartFrom::sequence walks from a boundary before it
  std::uint64_t received = 0;
  std::uint64_t lost = 0;
  std::uint64_t spilled = 0;  // spill: received from the journal
  std::uint64_t filtered = 0;  // skipped by the filter
  PollFilter filter;
  std::uint64_t published_position = UINT64_MAX;  // as last stored in our slot
  std::uint32_t empty_polls = 0;
  Policy policy = Policy::block;
  PollStatus status = PollStatus::ok;
  bool manual_release = false;
  bool catching_up = false;  // spill: delivering from the journal
};

// A type-erased message handler, for the journal path, which is not a template.
struct MessageSink {
  void* handler;
  void (*call)(void* handler, const Message& message);
};

// The slow paths poll hands over to (ipc/subscriber.cpp, ipc/spill.cpp).
void after_batch_slow(PollState& poll, SubscriberSlowState& slow, core::ReadState state) noexcept;
std::size_t poll_journal(PollState& poll, SubscriberSlowState& slow, MessageSink sink,
                         std::size_t max_messages) noexcept;
std::int64_t delivery_now_ns(SubscriberSlowState& slow) noexcept;

}  // namespace detail

class Subscriber {
 public:
  static Result<Subscriber> open(std::string_view channel, const SubscriberOptions& options = {});

  // A moved-from Subscriber may only be destroyed or assigned to.
  Subscriber(Subscriber&&) noexcept;
  Subscriber& operator=(Subscriber&&) noexcept;
  ~Subscriber();  // a clean exit unregisters (a named subscriber keeps its position)

  // Delivers up to max_messages to on_message(const Message&). Returns how many were delivered.
  template <class Handler>
  std::size_t poll(Handler&& on_message, std::size_t max_messages = 256) noexcept;

  // Waits until a message may be ready: spins for `spin`, then sleeps on a futex. False on timeout.
  bool wait(std::chrono::nanoseconds timeout,
            std::chrono::nanoseconds spin = std::chrono::microseconds(50)) noexcept;

  PollStatus status() const noexcept { return poll_.status; }
  const std::string& last_error() const noexcept;
  std::uint64_t next_sequence() const noexcept { return poll_.reader.next_sequence(); }
  std::uint64_t received() const noexcept { return poll_.received; }
  std::uint64_t lost() const noexcept { return poll_.lost; }
  // How many records SubscriberOptions::filter skipped (not in received(), not lost).
  std::uint64_t filtered() const noexcept { return poll_.filtered; }
  // Spill policy: how many of the received messages came from the journal.
  std::uint64_t spilled() const noexcept { return poll_.spilled; }
  // Spill policy: true while it reads from the journal (it was lapped), until it rejoins the ring.
  bool catching_up() const noexcept { return poll_.catching_up; }
  Policy policy() const noexcept { return poll_.policy; }
  const ChannelInfo& info() const noexcept;

  // Manual release (SubscriberOptions::manual_release): where this subscriber stands after the
  // last message delivered, and the counters as they were then.
  struct Cursor {
    std::uint64_t position = 0;       // ring position after the last delivered record
    std::uint64_t next_sequence = 0;  // the sequence expected next
    std::uint64_t received = 0;
    std::uint64_t lost = 0;
    std::uint64_t spilled = 0;
  };
  Cursor cursor() const noexcept {
    return Cursor{poll_.reader.position(), poll_.reader.next_sequence(), poll_.received,
                  poll_.lost, poll_.spilled};
  }
  // Publishes `cursor` (taken from this subscriber) as how far it is done: a block subscriber's
  // producers may overwrite everything before it, and a named subscriber restarted after a crash
  // resumes there. A cursor older than one already released is ignored. A few stores, no system
  // call; call it from the thread that polls.
  void release(const Cursor& cursor) noexcept;

 private:
  friend struct detail::GroupAccess;
  Subscriber() = default;

  void after_batch(core::ReadState state, std::size_t delivered) noexcept {
    poll_.received += delivered;
    // The position goes to our slot (where producers gate on it and tools read it) once we have
    // read a sixteenth of the ring past the last one published, and whenever we catch up: a
    // producer then waits at most that much longer for room, and our slot's line moves about
    // once per sixteenth of a lap instead of once per poll. A manual-release subscriber publishes
    // nothing here (release() does).
    const std::uint64_t unpublished = poll_.reader.position() - poll_.published_position;
    if (state == core::ReadState::ready) {
      if (poll_.status == PollStatus::ok &&
          (poll_.manual_release || unpublished < (poll_.reader.ring().capacity >> 4))) {
        return;
      }
    } else if (state == core::ReadState::empty) {
      // Every 1024th empty poll runs the idle checks (stalled claims, the heartbeat).
      if ((++poll_.empty_polls & 1023) != 0 && (poll_.manual_release || unpublished == 0)) return;
    }
    detail::after_batch_slow(poll_, *state_, state);
  }

  // Hot state inline; the rest (the channel mapping, the slot, stall tracking, the spill reader,
  // the latency clock, the last error) behind one pointer. Fields belong in one of the two, so
  // the move operations, which move exactly these two, never leave one behind.
  detail::PollState poll_;
  std::unique_ptr<detail::SubscriberSlowState> state_;
};

template <class Handler>
std::size_t Subscriber::poll(Handler&& on_message, std::size_t max_messages) noexcept {
  if (poll_.status == PollStatus::evicted) [[unlikely]] return 0;  // no longer protected: stop
  if (poll_.catching_up) [[unlikely]] {
    // Spill policy, lapped: the journal delivers until the ring holds our next sequence again.
    using H = std::remove_reference_t<Handler>;
    const detail::MessageSink sink{
        const_cast<void*>(static_cast<const void*>(std::addressof(on_message))),
        [](void* h, const Message& m) { (*static_cast<H*>(h))(m); }};
    return detail::poll_journal(poll_, *state_, sink, max_messages);
  }
  std::size_t handed = 0;
  std::int64_t delivered_ns = 0;  // latency histogram: read at the first message (see options)
  const bool filtering = poll_.filter.active;  // read once: a register, not a load per message
  // always_inline: both ring walks below instantiate it; a call per message costs ~10 instructions.
  auto deliver = [&](const core::RecordView& r) __attribute__((always_inline)) {
    poll_.lost += r.lost_before;
    if (r.sequence < poll_.skip_below) [[unlikely]] return;  // walking up to StartFrom::sequence
    std::uint64_t lost_before = r.lost_before;
    if (filtering) [[unlikely]] {
      if (!poll_.filter.matches(r.key, r.key_length, r.message_type)) {
        ++poll_.filtered;
        poll_.filter.carried_lost += lost_before;
        return;
      }
      lost_before += std::exchange(poll_.filter.carried_lost, 0);
    }
    ++handed;
    if (poll_.latency != nullptr) [[unlikely]] {
      if (delivered_ns < r.timestamp_ns) delivered_ns = detail::delivery_now_ns(*state_);
      core::record_latency(*poll_.latency, delivered_ns - r.timestamp_ns);
    }
    on_message(Message{r.sequence, r.timestamp_ns, {r.payload, r.length}, lost_before,
                       {r.key, r.key_length}, r.message_type});
  };
  std::size_t delivered = 0;
  core::ReadState state;
  if (poll_.policy == Policy::block) {
    state = poll_.reader.poll_inplace(deliver, max_messages, delivered);
  } else {
    state = poll_.reader.poll_copy(deliver, max_messages, poll_.copy_buffer,
                                   poll_.copy_buffer_size, delivered);
  }
  after_batch(state, handed);
  return handed;
}

}  // namespace shmbus
