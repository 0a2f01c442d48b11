#include "bench/harness/raw_shm_pingpong.hpp"

#include <new>

#include "bench/harness/spin.hpp"

namespace shmbus::bench {

namespace {

// Sequence numbers are sent as seq + 1 so the zero-filled word means "nothing yet". Each side
// waits for the word to change: values strictly increase, so a change is a new message.
std::uint64_t wait_for_change(const std::atomic<std::uint64_t>& word, std::uint64_t& last_seen) {
  std::uint64_t v;
  // acquire: pairs with the peer's release store, the usual message-passing edge (nothing else
  // is published here, but a real transport needs it and the floor should pay the same).
  while ((v = word.load(std::memory_order_acquire)) == last_seen) spin_relax();
  last_seen = v;
  return v - 1;
}

}  // namespace

void RawShmPingPong::prepare(const BenchConfig&) {
  map_ = SharedMapping(sizeof(Line));
  line_ = new (map_.data()) Line{};
  last_seen_ = 0;
}

void RawShmPingPong::send(std::uint64_t seq) {
  line_->ping.store(seq + 1, std::memory_order_release);  // release: see wait_for_change
}

std::uint64_t RawShmPingPong::receive() { return wait_for_change(line_->ping, last_seen_); }

void RawShmPingPong::send_back(std::uint64_t seq) {
  line_->pong.store(seq + 1, std::memory_order_release);
}

std::uint64_t RawShmPingPong::receive_back() { return wait_for_change(line_->pong, last_seen_); }

void RawShmPingPong::cleanup() {
  line_ = nullptr;
  map_ = SharedMapping();
}

}  // namespace shmbus::bench
