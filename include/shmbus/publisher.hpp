// The producer side of a channel: claim space in the ring, write in place, commit.
//
//   auto pub = shmbus::Publisher::open("md.eurusd").value();
//   shmbus::Claim c;
//   if (pub.try_claim(64, c) == shmbus::PublishStatus::ok) { fill(c.data(), 64); pub.commit(c); }
//
// Hot-path calls (claim, commit, publish) return a PublishStatus, never throw, allocate nothing,
// take no lock and make no system call (tests/core/hot_path_test.cpp counts them).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "options.hpp"
#include "result.hpp"

namespace shmbus {

enum class PublishStatus : std::uint8_t {
  ok,
  back_pressured,  // a block subscriber has not freed the space; nothing was claimed
  too_large,       // above the channel's max_message; nothing was claimed
  timed_out,       // a blocking call gave up; nothing was claimed
  abandoned,       // the claim was held past the abandon timeout and a peer marked it abandoned
  corrupt,         // the channel's claim word holds garbage (a peer wrote into the ring)
};
const char* to_string(PublishStatus status) noexcept;

namespace detail {
struct PublisherState;  // ipc/publisher_state.hpp
}

// The longest key a record may carry.
inline constexpr std::uint32_t kMaxKeyLength = 256;

// What a record may carry besides its payload: a key (subscribers may filter on it, consumer
// groups keep per-key order) and an application message type. A record with neither is an
// ordinary record; one with either takes 8 bytes plus the key rounded up to 8 more in the ring,
// counted against max_message (docs/architecture.md).
struct RecordTag {
  std::span<const std::byte> key;  // at most kMaxKeyLength bytes; empty: no key
  std::uint16_t message_type = 0;  // 0: none
};

// Space claimed in the ring. Write `size()` bytes at `data()`, then commit (or abandon) it. For a
// tagged claim the key and message type are already written; data() is the payload after them.
class Claim {
 public:
  std::byte* data() const noexcept { return payload_; }
  std::uint32_t size() const noexcept { return length_; }
  std::span<std::byte> span() const noexcept { return {payload_, length_}; }
  std::uint64_t sequence() const noexcept { return sequence_; }

 private:
  friend class Publisher;
  friend struct detail::PublisherState;  // fills claims (ipc/publisher.cpp)
  std::byte* payload_ = nullptr;
  std::uint32_t length_ = 0;
  std::uint64_t sequence_ = 0;
  // Where the claim lies in the ring, and its time, for commit and abandon.
  std::uint64_t position_ = 0;
  std::uint64_t start_ = 0;
  std::uint64_t end_ = 0;
  std::int64_t timestamp_ns_ = 0;
  // The record as the ring holds it: its length (the tag included) and type (RecordType).
  std::uint32_t record_length_ = 0;
  std::uint16_t record_type_ = 0;
};

class Publisher {
 public:
  // Opens the channel, creating it with `options` if it does not exist. An existing channel of
  // another configuration is refused unless options.accept_existing (ChannelOptions).
  static Result<Publisher> open(std::string_view channel, const ChannelOptions& options);
  // Opens the channel as it exists, whatever its configuration, or creates it with the defaults.
  static Result<Publisher> open(std::string_view channel);

  // A moved-from Publisher may only be destroyed or assigned to.
  Publisher(Publisher&&) noexcept;
  Publisher& operator=(Publisher&&) noexcept;
  ~Publisher();  // gives up the producer slot (and a single-producer channel's ownership)

  [[nodiscard]] PublishStatus try_claim(std::uint32_t size, Claim& claim) noexcept;
  // A claim whose record carries `tag`: `size` payload bytes after it. too_large when the key is
  // longer than kMaxKeyLength or the record (tag included) above max_message. An empty tag (no
  // key, type 0) claims an ordinary record, as the call above.
  [[nodiscard]] PublishStatus try_claim(std::uint32_t size, Claim& claim,
                                        const RecordTag& tag) noexcept;
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
  [[nodiscard]] PublishStatus claim(std::uint32_t size, Claim& claim, const RecordTag& tag,
                                    std::chrono::nanoseconds timeout) noexcept;
  [[nodiscard]] PublishStatus commit(Claim& claim) noexcept;
  void abandon(Claim& claim) noexcept;

  // Copying helpers: claim, copy, commit.
  [[nodiscard]] PublishStatus try_publish(std::span<const std::byte> payload) noexcept;
  [[nodiscard]] PublishStatus publish(std::span<const std::byte> payload,
                                      std::chrono::nanoseconds timeout) noexcept;
  [[nodiscard]] PublishStatus try_publish(std::span<const std::byte> payload,
                                          const RecordTag& tag) noexcept;
  [[nodiscard]] PublishStatus publish(std::span<const std::byte> payload, const RecordTag& tag,
                                      std::chrono::nanoseconds timeout) noexcept;

  // Publishes `count` sequences that carry nothing: abandoned zero-length records (one 32-byte
  // frame each, claimed in batches of kMaxBatch). Subscribers see them as lost_before on their next
  // record; a journaler writes them as a gap record. For a bridge laying out sequences another
  // host lost. Not a hot-path call: it may spin and sleep while back-pressured, up to `timeout`
  // for each batch. ok, or why it stopped (the number laid out so far in *published if given).
  [[nodiscard]] PublishStatus publish_gap(std::uint64_t count, std::chrono::nanoseconds timeout,
                                          std::uint64_t* published = nullptr) noexcept;
  // The next sequence this channel will give out (its claim word), for a single producer
  // restarting. One acquire load.
  std::uint64_t next_sequence() const noexcept;

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
  // Every call above is out of line, so all of the state sits behind one pointer: the public
  // header shows no internals and the defaulted moves are correct.
  std::unique_ptr<detail::PublisherState> state_;
};

}  // namespace shmbus
