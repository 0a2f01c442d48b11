// "raw-shm" throughput: a minimal fixed-slot single-producer single-consumer ring in shared
// memory, the baseline a shared-memory bus must beat on streaming.
//
// Layout (one MAP_SHARED mapping made before fork):
//   [0, 64)     head: next index the consumer reads; written by the consumer only
//   [64, 128)   tail: next index the producer writes; written by the producer only
//   [128, ...)  slot_count slots of round_up(size, 8) bytes; index i lives in slot i & (count - 1)
// Invariants: 0 <= tail - head <= slot_count; slots [head, tail) hold published messages.
// Each side keeps its own index in a local variable and a cached copy of the other's, reloading
// it only when the cache says full (producer) or empty (consumer), so the shared lines move about
// once per batch rather than once per message.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "bench/harness/shared_mapping.hpp"
#include "bench/harness/transport.hpp"

namespace shmbus::bench {

class RawShmRing final : public ThroughputTransport {
 public:
  std::string name() const override { return "raw-shm"; }
  void prepare(const BenchConfig& config) override;
  void as_producer() override {}
  void as_consumer() override {}
  void send(std::uint64_t seq) override;
  std::uint64_t receive() override;
  void cleanup() override;

 private:
  struct Indices {
    alignas(64) std::atomic<std::uint64_t> head;
    alignas(64) std::atomic<std::uint64_t> tail;
  };
  static_assert(sizeof(Indices) == 128);

  SharedMapping map_;
  Indices* indices_ = nullptr;
  char* slots_ = nullptr;
  std::size_t size_ = 0;        // bytes copied per message
  std::size_t slot_bytes_ = 0;  // size_ rounded up to 8
  std::uint64_t mask_ = 0;      // slot_count - 1
  std::uint64_t own_ = 0;       // this process's index: tail (producer) or head (consumer)
  std::uint64_t other_ = 0;     // cached copy of the other side's index
  std::vector<char> message_;   // the process-local message copied in or out
};

}  // namespace shmbus::bench
