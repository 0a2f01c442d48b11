// "raw-seq" throughput: the fastest honest single-producer single-consumer ring that moves one
// cache line per 64-byte message. Every shmbus throughput figure is also given as a ratio to it.
//
// Layout (one MAP_SHARED mapping made before fork):
//   [0, 64)     consumer index: how far the consumer has copied out, stored lazily (see below);
//               written by the consumer only
//   [64, ...)   slot_count slots of round_up(size, 64) bytes; index i lives in slot
//               i & (slot_count - 1). A 64-byte message fills exactly one cache line.
// A slot's first 8 bytes are its ready word and also the message's sequence number (the harness
// puts it there, transport.hpp); bytes [8, size) are the rest of the message.
//
// Protocol. The harness streams seq 0, 1, 2... then kEndMarker, so message i carries seq i and its
// ready word says by itself whether the slot holds message i:
//   producer (index i): copy bytes [8, size) into the slot, then release-store the word = seq.
//   consumer (index i): acquire-load the word; the slot is fresh when it equals i or kEndMarker,
//                       then copy bytes [8, size) out.
// There is no shared producer index: the consumer never reads anything but the slot it wants.
// The consumer's index is shared lazily: stored every slot_count / 8 messages (2048 for 64-byte
// messages in the 1 MiB of slots), so its line moves rarely; the producer reloads it only when
// its cached copy says the ring is full.
//
// Invariants:
//   - Before any message, slot k's word is k - 2 * slot_count (wrapping): never k, never what any
//     later lap expects there (k + lap * slot_count), never kEndMarker (that would need
//     k = 2 * slot_count - 1). So zero-filled memory or a previous lap is never taken as fresh.
//   - 0 <= tail - stored consumer index <= slot_count: the producer never overwrites a slot the
//     consumer has not finished copying out, because the consumer stores an index only after its
//     copies from the slots below it.
//   - Lazy stores cannot deadlock: while the producer waits on a full ring the consumer has
//     slot_count messages to read, so it reaches its next store within slot_count / 8 of them.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "bench/harness/shared_mapping.hpp"
#include "bench/harness/transport.hpp"

namespace shmbus::bench {

class RawSeqRing final : public ThroughputTransport {
 public:
  std::string name() const override { return "raw-seq"; }
  void prepare(const BenchConfig& config) override;
  void as_producer() override {}
  void as_consumer() override {}
  // seq must be the next index or kEndMarker (the harness's stream); anything else throws.
  void send(std::uint64_t seq) override;
  std::uint64_t receive() override;
  void cleanup() override;

 private:
  struct alignas(64) ConsumerIndex {
    std::atomic<std::uint64_t> copied;  // every message below it has been copied out
  };
  static_assert(sizeof(ConsumerIndex) == 64);

  std::atomic_ref<std::uint64_t> ready_word(std::uint64_t index) const;
  char* slot(std::uint64_t index) const { return slots_ + (index & mask_) * slot_bytes_; }

  SharedMapping map_;
  ConsumerIndex* consumer_index_ = nullptr;
  char* slots_ = nullptr;
  std::size_t size_ = 0;         // bytes per message, ready word included
  std::size_t slot_bytes_ = 0;   // size_ rounded up to 64
  std::uint64_t slot_count_ = 0;
  std::uint64_t mask_ = 0;       // slot_count_ - 1
  std::uint64_t store_every_ = 0;  // consumer: stores its index when own_ is a multiple of this
  std::uint64_t own_ = 0;        // this process's index: next to write (producer) or read
  std::uint64_t cached_copied_ = 0;  // producer: the consumer index as last loaded
  std::vector<char> message_;    // the process-local message copied in or out
};

}  // namespace shmbus::bench
