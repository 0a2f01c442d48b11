// "raw-shm" round trip: the floor. ONE cache line in shared memory holding two atomic words, one
// per direction; a message is a release store of seq + 1, received by an acquire load that sees
// the word change. Only the cache line travels: the `size`-byte payload is NOT copied (that is
// the point: no transport can move a message between two cores faster than its cache line).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "bench/harness/shared_mapping.hpp"
#include "bench/harness/transport.hpp"

namespace shmbus::bench {

class RawShmPingPong final : public PingPongTransport {
 public:
  std::string name() const override { return "raw-shm"; }
  void prepare(const BenchConfig& config) override;
  void as_initiator() override {}
  void as_responder() override {}
  void send(std::uint64_t seq) override;
  std::uint64_t receive() override;
  void send_back(std::uint64_t seq) override;
  std::uint64_t receive_back() override;
  void cleanup() override;

 private:
  // Both words share one line on purpose: one line bouncing between the two cores is the floor.
  struct alignas(64) Line {
    std::atomic<std::uint64_t> ping;  // written by the initiator only; 0 = nothing sent yet
    std::atomic<std::uint64_t> pong;  // written by the responder only
  };
  static_assert(sizeof(Line) == 64);
  static_assert(std::atomic<std::uint64_t>::is_always_lock_free);

  Line* line_ = nullptr;
  SharedMapping map_;
  std::uint64_t last_seen_ = 0;  // the last word value this process received (per process)
};

}  // namespace shmbus::bench
