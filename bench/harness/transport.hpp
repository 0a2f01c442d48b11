// The two interfaces a transport implements to be measured across two processes by the runner
// (bench/harness/runner.hpp), and the settings both sides receive.
//
// Life of a transport object in one round (the runner drives it; one object serves every round):
//
//   parent:     prepare(config)                  create shared memory, pipes, queues
//   fork x2:    responder/consumer child         pinned to CPU 1, started first, busy-polls
//               initiator/producer child         pinned to CPU 0, starts once the other is ready
//   each child: as_responder() / as_initiator()  drop what this side does not use, attach
//               ...the measured loop...
//               detach()                         optional; the child then _exit()s
//   parent:     cleanup()                        after both children are reaped, even on failure
//
// Messages: every message is exactly `config.size` bytes (size >= 8) and carries its sequence
// number in its first 8 bytes (write_seq/read_seq below); a transport really moves all `size`
// bytes unless it says otherwise in a comment (the raw-shm cache-line floor does). The sequence
// number kEndMarker is reserved for the end of a throughput stream.
//
// Errors: prepare(), as_*() and the message calls throw std::exception (std::system_error for OS
// failures) with a message that names the transport. The runner catches it in the child, passes
// the text to the parent and fails the run. send/receive busy-poll and never give up: if the peer
// dies the runner notices the dead process and kills the spinning one.
//
// Spinning: call spin_relax() (bench/harness/spin.hpp) once per empty poll. It does nothing when
// the two sides have a CPU each and yields when they share one, so a one-CPU box still finishes.
//
// Example: a pingpong transport over two atomics in memory mapped before fork.
//
//   class TwoAtomics final : public PingPongTransport {
//    public:
//     std::string name() const override { return "two-atomics"; }
//     void prepare(const BenchConfig&) override { map_ = SharedMapping(2 * 64); }
//     void as_initiator() override {}
//     void as_responder() override {}
//     void send(std::uint64_t seq) override { word(0).store(seq + 1, std::memory_order_release); }
//     std::uint64_t receive() override { return wait(word(0)); }
//     void send_back(std::uint64_t seq) override { word(8).store(seq + 1, std::memory_order_release); }
//     std::uint64_t receive_back() override { return wait(word(8)); }
//     void cleanup() override { map_ = SharedMapping(); }
//    private:
//     std::atomic<std::uint64_t>& word(std::size_t i) { return map_.as<std::atomic<std::uint64_t>>()[i]; }
//     std::uint64_t wait(std::atomic<std::uint64_t>& w) {  // 0 means "nothing yet", so seq + 1
//       std::uint64_t v;
//       while ((v = w.load(std::memory_order_acquire)) == last_) spin_relax();
//       last_ = v;
//       return v - 1;
//     }
//     SharedMapping map_;
//     std::uint64_t last_ = 0;  // each process has its own copy after fork
//   };
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>

namespace shmbus::bench {

// Settings of one benchmark run; every transport sees the same values in prepare().
struct BenchConfig {
  std::size_t size = 64;                 // bytes per message, sequence number included; >= 8
  std::uint64_t warmup = 20'000;         // pingpong: untimed round trips before the timed ones
  std::uint64_t count = 200'000;         // pingpong: timed round trips (one sample each)
  double duration_s = 2.0;               // throughput: how long the producer streams
  int rounds = 3;                        // interleaved rounds; the report gives the median
  int initiator_cpu = 0;                 // initiator/producer CPU; -1: let the runner choose
  int responder_cpu = 1;                 // responder/consumer CPU; -1: let the runner choose
  double timeout_s = 300.0;              // a round that takes longer is killed and fails
};

inline constexpr std::size_t kSeqBytes = sizeof(std::uint64_t);
inline constexpr std::uint64_t kEndMarker = std::numeric_limits<std::uint64_t>::max();

// The sequence number lives in the first 8 bytes of a message, in host byte order. memcpy because
// a transport's buffer need not be 8-byte aligned.
inline void write_seq(void* message, std::uint64_t seq) { std::memcpy(message, &seq, kSeqBytes); }
inline std::uint64_t read_seq(const void* message) {
  std::uint64_t seq;
  std::memcpy(&seq, message, kSeqBytes);
  return seq;
}

// Round trip: the initiator sends a message, the responder echoes it back, the initiator times
// the pair. The two directions are separate calls so a transport can use one channel each way.
class PingPongTransport {
 public:
  virtual ~PingPongTransport() = default;

  // Short, stable, used in tables and JSON ("raw-shm", "pipe"...).
  virtual std::string name() const = 0;
  // Parent, before fork: create everything both processes share. Called once per round.
  virtual void prepare(const BenchConfig& config) = 0;
  // In the child after fork, before its loop; the responder's runs first.
  virtual void as_initiator() = 0;
  virtual void as_responder() = 0;

  // Initiator: one message carrying seq to the responder (spins while the channel is full).
  virtual void send(std::uint64_t seq) = 0;
  // Responder: busy-poll until a message arrives; returns the sequence number it carried.
  virtual std::uint64_t receive() = 0;
  // Responder: echo a message carrying seq back to the initiator.
  virtual void send_back(std::uint64_t seq) = 0;
  // Initiator: busy-poll until the echo arrives; returns the sequence number it carried.
  virtual std::uint64_t receive_back() = 0;

  // In the child after its loop (not called if the loop failed). Default: nothing.
  virtual void detach() {}
  // Parent, after both children are reaped, also after a failure: remove names, close, unmap.
  virtual void cleanup() = 0;
};

// Stream: the producer sends seq 0, 1, 2... for config.duration_s, then kEndMarker; the consumer
// checks each one is the next and counts them.
class ThroughputTransport {
 public:
  virtual ~ThroughputTransport() = default;

  virtual std::string name() const = 0;
  virtual void prepare(const BenchConfig& config) = 0;  // parent, before fork, once per round
  virtual void as_producer() = 0;                       // child, after fork
  virtual void as_consumer() = 0;                       // child, after fork, runs first

  // Producer: one message carrying seq (spins while the channel is full).
  virtual void send(std::uint64_t seq) = 0;
  // Consumer: busy-poll until a message arrives; returns the sequence number it carried.
  virtual std::uint64_t receive() = 0;

  virtual void detach() {}     // child, after its loop; default nothing
  virtual void cleanup() = 0;  // parent, after both children are reaped
};

}  // namespace shmbus::bench
