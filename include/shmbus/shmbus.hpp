// shmbus: a low-latency shared-memory bus for processes on one host. The whole API is here.
//
//   auto pub = shmbus::Publisher::open("md.eurusd").value();
//   shmbus::Claim c;
//   if (pub.try_claim(64, c) == shmbus::PublishStatus::ok) { fill(c.data(), 64); pub.commit(c); }
//
//   shmbus::SubscriberOptions options;
//   options.policy = shmbus::Policy::block;
//   auto sub = shmbus::Subscriber::open("md.eurusd", options).value();
//   sub.poll([](const shmbus::Message& m) { handle(m.sequence, m.payload); });
//
// Setup calls (open, close) return Result<T>: a value or an Error whose message names the channel,
// the segment and what is wrong. Hot-path calls (claim, commit, publish, poll) return small status
// codes, never throw, allocate nothing, take no lock and make no system call.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

#include <tl/expected.hpp>

#include "core/latency_histogram.hpp"
#include "core/ring.hpp"
#include "core/ring_reader.hpp"

namespace shmbus {

enum class ErrorCode {
  invalid_argument,
  not_found,
  permission_denied,
  no_space,
  version_mismatch,  // the segment was written by another layout version or build
  corrupt,           // the segment holds values no shmbus writer produces
  busy,              // e.g. a named subscriber already attached in a live process
  timed_out,
  system,            // any other OS error; the message carries errno's text
};

struct Error {
  ErrorCode code;
  std::string message;
};

template <class T>
using Result = tl::expected<T, Error>;

// What a slow subscriber does to the producers.
enum class Policy : std::uint8_t {
  block = 1,  // lossless: gates the producers, which see back-pressure when it falls a lap behind
  drop = 2,   // never slows producers; lost messages are counted by sequence gap and reported
  spill = 3,  // never slows producers; catches up from the journal (needs a journaler)
};

enum class StartFrom : std::uint8_t {
  latest,    // the next message published
  earliest,  // the oldest message still in the ring
  sequence,  // SubscriberOptions::start_sequence (or the earliest retained if it is gone)
};

struct ChannelOptions {
  std::uint64_t capacity = 4 << 20;      // data bytes, a power of two
  std::uint32_t max_message = 64 << 10;  // largest payload; at most capacity / 4 - 32
  unsigned mode = 0660;                  // file mode of the ring; subscribers need write access
                                         // to the control segment, whose mode adds write to
                                         // every class that may read
  std::chrono::milliseconds open_timeout{2000};  // waiting for a channel being created
  // One producer process at a time (enforced: a second publisher gets ErrorCode::busy while the
  // first one's process lives). Claims then need no compare-and-swap.
  bool single_producer = false;
  // This publisher keeps its message and byte counters in the control segment (`shmbus stat`):
  // two relaxed stores to its own cache line per commit. Off only to measure what they cost.
  bool counters = true;
};

// A snapshot of a channel's identity, as the creator wrote it.
struct ChannelInfo {
  std::string name;
  std::uint64_t capacity = 0;
  std::uint32_t max_message = 0;
  std::uint64_t incarnation = 0;
  bool single_producer = false;
};

enum class PublishStatus : std::uint8_t {
  ok,
  back_pressured,  // a block subscriber has not freed the space; nothing was claimed
  too_large,       // above the channel's max_message; nothing was claimed
  timed_out,       // a blocking call gave up; nothing was claimed
  abandoned,       // the claim was held past the abandon timeout and a peer marked it abandoned
  corrupt,         // the channel's claim word holds garbage (a peer wrote into the ring)
};

const char* to_string(PublishStatus status) noexcept;
const char* to_string(Policy policy) noexcept;

namespace detail {
class ChannelMapping;
struct ProcessId;
struct ProducerSlot;
class PublishClock;
struct SpillState;
struct SubscriberAccess;
}

// Space claimed in the ring. Write `size()` bytes at `data()`, then commit (or abandon) it.
class Claim {
 public:
  std::byte* data() const noexcept { return ticket_.payload; }
  std::uint32_t size() const noexcept { return ticket_.length; }
  std::span<std::byte> span() const noexcept { return {ticket_.payload, ticket_.length}; }
  std::uint64_t sequence() const noexcept { return ticket_.sequence; }

 private:
  friend class Publisher;
  core::ClaimTicket ticket_;
};

class Publisher {
 public:
  // Opens the channel, creating it with `options` if it does not exist.
  static Result<Publisher> open(std::string_view channel, const ChannelOptions& options = {});

  Publisher(Publisher&&) noexcept;
  Publisher& operator=(Publisher&&) noexcept;
  ~Publisher();

  [[nodiscard]] PublishStatus try_claim(std::uint32_t size, Claim& claim) noexcept;
  // Claims up to kMaxBatch records at once: one tail update and one timestamp for all of them,
  // consecutive sequences, at most one maximum-size frame (max_message + 32 bytes) in all.
  // Commit (or abandon) each claim, in order. Every claim must be committed or abandoned: on a
  // multi-producer channel an open claim holds the other producers back after a lap.
  static constexpr std::size_t kMaxBatch = 64;
  [[nodiscard]] PublishStatus try_claim_batch(std::span<const std::uint32_t> sizes,
                                              std::span<Claim> claims) noexcept;
  // Spins (then yields) while back-pressured, up to `timeout`.
  [[nodiscard]] PublishStatus claim(std::uint32_t size, Claim& claim,
                                    std::chrono::nanoseconds timeout) noexcept;
  [[nodiscard]] PublishStatus commit(Claim& claim) noexcept;
  void abandon(Claim& claim) noexcept;

  // Copying helpers: claim, copy, commit.
  [[nodiscard]] PublishStatus try_publish(std::span<const std::byte> payload) noexcept;
  [[nodiscard]] PublishStatus publish(std::span<const std::byte> payload,
                                      std::chrono::nanoseconds timeout) noexcept;

  const ChannelInfo& info() const noexcept;

  // Durability, as reported by the channel's journaler (`shmbus record`, see docs/architecture.md):
  // every sequence <= journaled_sequence() is in the journal files (survives a crash of any
  // process), every sequence <= durable_sequence() is also fdatasync'ed (survives a power loss).
  // The last values the current or most recent journaler reported; 0 if the channel never had
  // one. One acquire load each.
  std::uint64_t durable_sequence() const noexcept;
  std::uint64_t journaled_sequence() const noexcept;
  // Waits until `sequence` (e.g. Claim::sequence() of a committed message) is durable. True at
  // once if it already is. False when `timeout` passes first, or as soon as no live journaler is
  // attached (none, or its process died): nothing would ever make it durable. Spins for a few
  // microseconds, then sleeps in slices growing to 1 ms polling the control segment (no futex:
  // the journaler's progress is not worth a system call on its side). Not a hot-path call.
  bool wait_durable(std::uint64_t sequence, std::chrono::nanoseconds timeout) noexcept;

 private:
  Publisher() = default;
  void release_exclusive() noexcept;
  void claim_done() noexcept;
  static Result<void> take_exclusive(detail::ChannelMapping& channel,
                                     const detail::ProcessId& self);
  std::uint64_t gate_floor() noexcept;
  std::uint64_t refresh_gate() noexcept;
  bool wait_for_gate(std::uint64_t end) noexcept;
  void wake_waiters() noexcept;

  std::shared_ptr<detail::ChannelMapping> channel_;
  core::RingWriter writer_;
  std::unique_ptr<detail::PublishClock> clock_;
  std::uint64_t gate_epoch_ = UINT64_MAX;
  std::uint64_t gate_floor_ = UINT64_MAX;
  bool exclusive_ = false;  // holds the single-producer ownership of the channel
  detail::ProducerSlot* slot_ = nullptr;  // our registration in the control segment
  std::uint32_t outstanding_ = 0;         // claims not yet committed or abandoned
  std::uint64_t published_ = 0;
  std::uint64_t published_bytes_ = 0;
  bool counters_ = true;
  std::uint32_t back_pressured_tries_ = 0;
};

struct Message {
  std::uint64_t sequence;
  std::int64_t timestamp_ns;  // publish time, nanoseconds since the Unix epoch
  std::span<const std::byte> payload;  // valid until the next poll
  std::uint64_t lost_before;  // sequences lost just before this one (drop policy, abandoned claims)
};

namespace detail {
// A type-erased message handler, so that the spill policy's journal path (ipc/spill.cpp, not a
// template) can call the handler given to Subscriber::poll.
struct MessageSink {
  void* handler;
  void (*call)(void* handler, const Message& message);
};
}  // namespace detail

struct SubscriberOptions {
  Policy policy = Policy::block;
  StartFrom start = StartFrom::latest;
  std::uint64_t start_sequence = 0;
  // A named subscriber resumes where the last process under that name stopped.
  std::string name;
  // A block subscriber whose process has died is evicted once it has not moved for this long.
  std::chrono::nanoseconds liveness_timeout = std::chrono::seconds(5);
  // A claim not committed for this long is marked abandoned (and its sequence counted lost).
  std::chrono::nanoseconds abandon_timeout = std::chrono::seconds(1);
  std::chrono::milliseconds open_timeout{2000};
  // poll() never publishes how far this subscriber has read: release(cursor()) does, when the
  // application is done with the records (the journaler: when their writes have completed). A
  // block subscriber's records stay in place, unoverwritten, until released; a named one resumed
  // after a crash starts at the last released cursor (at-least-once).
  bool manual_release = false;
  // Records each message's end-to-end latency (publish timestamp to delivery) in this
  // subscriber's histogram in the control segment, for `shmbus stat`. Costs a clock read (TSC)
  // per poll and three plain stores per message. The delivery time is read once per poll, before
  // the first handler call, so a long handler does not inflate the latencies of the batch after
  // it; a message published after that read (a block poll keeps reading while handlers run) gets
  // a fresh one. Messages caught up from the journal (spill) each get their own.
  bool latency_histogram = false;
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

class Subscriber {
 public:
  static Result<Subscriber> open(std::string_view channel, const SubscriberOptions& options = {});

  Subscriber(Subscriber&&) noexcept;
  Subscriber& operator=(Subscriber&&) noexcept;
  ~Subscriber();  // a clean exit unregisters (a named subscriber keeps its position)

  // Delivers up to max_messages to on_message(const Message&). Returns how many were delivered.
  template <class Handler>
  std::size_t poll(Handler&& on_message, std::size_t max_messages = 256) noexcept;

  // Waits until a message may be ready: spins for `spin`, then sleeps on a futex. False on timeout.
  bool wait(std::chrono::nanoseconds timeout,
            std::chrono::nanoseconds spin = std::chrono::microseconds(50)) noexcept;

  PollStatus status() const noexcept { return status_; }
  const std::string& last_error() const noexcept { return last_error_; }
  std::uint64_t next_sequence() const noexcept { return reader_.next_sequence(); }
  std::uint64_t received() const noexcept { return received_; }
  std::uint64_t lost() const noexcept { return lost_; }
  // Spill policy: how many of the received messages came from the journal.
  std::uint64_t spilled() const noexcept { return spilled_; }
  // Spill policy: true while it reads from the journal (it was lapped), until it rejoins the ring.
  bool catching_up() const noexcept { return catching_up_; }
  Policy policy() const noexcept { return policy_; }
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
    return Cursor{reader_.position(), reader_.next_sequence(), received_, lost_, spilled_};
  }
  // Publishes `cursor` (taken from this subscriber) as how far it is done: a block subscriber's
  // producers may overwrite everything before it, and a named subscriber restarted after a crash
  // resumes there. A cursor older than one already released is ignored. A few stores, no system
  // call; call it from the thread that polls.
  void release(const Cursor& cursor) noexcept;

 private:
  friend struct detail::SubscriberAccess;
  Subscriber() = default;
  void detach() noexcept;
  bool message_ready() const noexcept;
  void after_batch(core::ReadState state, std::size_t delivered) noexcept {
    received_ += delivered;
    if (state == core::ReadState::empty) ++empty_polls_;
    // The common cases stay inline: nothing to publish, and no stall check due yet. A manual
    // release subscriber publishes nothing here (release() does).
    if (manual_release_ || reader_.position() == published_position_) {
      if (state == core::ReadState::ready) return;
      if (state == core::ReadState::empty && (empty_polls_ & 1023) != 0) return;
    }
    after_batch_slow(state);
  }
  void after_batch_slow(core::ReadState state) noexcept;
  void on_empty() noexcept;
  void on_lapped() noexcept;
  void on_corrupt() noexcept;
  void publish_position() noexcept;
  // Publishes the position unless the application releases it itself.
  void note_progress() noexcept {
    if (!manual_release_) publish_position();
  }
  // The spill policy's journal path (ipc/spill.cpp). Slow path: reads files, allocates.
  std::size_t poll_journal(detail::MessageSink sink, std::size_t max_messages) noexcept;
  void start_catch_up() noexcept;
  bool try_rejoin(bool need_margin) noexcept;
  bool journaler_alive() noexcept;
  void spill_fallback(const std::string& why) noexcept;
  bool journal_ready() const noexcept;
  bool catch_up_ready() noexcept;

  std::shared_ptr<detail::ChannelMapping> channel_;
  void* slot_ = nullptr;  // detail::SubscriberSlot in the control segment
  core::RingReader reader_;
  Policy policy_ = Policy::block;
  PollStatus status_ = PollStatus::ok;
  std::uint64_t skip_below_ = 0;  // StartFrom::sequence walks from a boundary before it
  std::uint64_t received_ = 0;
  std::uint64_t lost_ = 0;
  std::uint64_t published_position_ = UINT64_MAX;
  std::unique_ptr<std::byte[]> copy_buffer_;  // drop policy: frames copied before validation
  std::size_t copy_buffer_size_ = 0;
  // Stall detection on the slow path: where we waited, since when, and how often we found nothing.
  std::uint64_t stall_position_ = UINT64_MAX;
  std::uint64_t stall_word_ = 0;
  std::int64_t stall_since_ns_ = 0;
  std::uint32_t empty_polls_ = 0;
  std::int64_t abandon_timeout_ns_ = 0;
  std::string last_error_;
  bool manual_release_ = false;
  bool catching_up_ = false;  // spill: delivering from the journal
  std::uint64_t spilled_ = 0;
  std::unique_ptr<detail::SpillState> spill_;  // spill policy only
  // SubscriberOptions::latency_histogram: our histogram in the control segment, and the clock
  // that reads delivery times (a TSC-extrapolated CLOCK_REALTIME, as publishers stamp with).
  core::LatencyHistogram* latency_ = nullptr;
  std::unique_ptr<detail::PublishClock> latency_clock_;
  std::int64_t delivery_now_ns() noexcept;
  std::uint32_t position_publishes_ = 0;  // heartbeats are refreshed every 1024th
};

template <class Handler>
std::size_t Subscriber::poll(Handler&& on_message, std::size_t max_messages) noexcept {
  if (status_ == PollStatus::evicted) [[unlikely]] return 0;  // no longer protected: stop
  if (catching_up_) [[unlikely]] {
    // Spill policy, lapped: the journal delivers until the ring holds our next sequence again.
    using H = std::remove_reference_t<Handler>;
    const detail::MessageSink sink{
        const_cast<void*>(static_cast<const void*>(std::addressof(on_message))),
        [](void* h, const Message& m) { (*static_cast<H*>(h))(m); }};
    return poll_journal(sink, max_messages);
  }
  std::size_t handed = 0;
  std::int64_t delivered_ns = 0;  // latency histogram: read at the first message (see options)
  auto deliver = [&](const core::RecordView& r) {
    lost_ += r.lost_before;
    if (r.sequence < skip_below_) [[unlikely]] return;  // walking up to StartFrom::sequence
    ++handed;
    if (latency_ != nullptr) [[unlikely]] {
      if (delivered_ns < r.timestamp_ns) delivered_ns = delivery_now_ns();
      core::record_latency(*latency_, delivered_ns - r.timestamp_ns);
    }
    on_message(Message{r.sequence, r.timestamp_ns, {r.payload, r.length}, r.lost_before});
  };
  std::size_t delivered = 0;
  core::ReadState state;
  if (policy_ == Policy::block) {
    state = reader_.poll_inplace(deliver, max_messages, delivered);
  } else {
    state = reader_.poll_copy(deliver, max_messages, copy_buffer_.get(), copy_buffer_size_,
                              delivered);
  }
  after_batch(state, handed);
  return handed;
}

// Removes a channel's segments. Processes that still map it keep their mapping.
Result<void> remove_channel(std::string_view channel);

}  // namespace shmbus
