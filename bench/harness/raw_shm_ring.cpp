#include "bench/harness/raw_shm_ring.hpp"

#include <cstring>
#include <new>

#include "bench/harness/spin.hpp"

namespace shmbus::bench {

namespace {

constexpr std::uint64_t kMaxSlots = 4096;
constexpr std::size_t kMaxSlotBytesTotal = std::size_t{64} << 20;  // large messages: fewer slots

}  // namespace

void RawShmRing::prepare(const BenchConfig& config) {
  size_ = config.size;
  slot_bytes_ = (size_ + 7) & ~std::size_t{7};
  std::uint64_t slots = kMaxSlots;
  while (slots > 2 && slots * slot_bytes_ > kMaxSlotBytesTotal) slots /= 2;
  mask_ = slots - 1;

  map_ = SharedMapping(sizeof(Indices) + slots * slot_bytes_);
  indices_ = new (map_.data()) Indices{};
  slots_ = static_cast<char*>(map_.data()) + sizeof(Indices);
  own_ = 0;
  other_ = 0;
  // A recognisable filler so the bytes after the sequence number are real data, not zero pages.
  message_.assign(size_, '\x5a');
}

void RawShmRing::send(std::uint64_t seq) {
  const std::uint64_t tail = own_;
  if (tail - other_ > mask_) {  // full as far as the cache knows: look at the real head
    // acquire: the consumer's release store of head means it has finished copying those slots
    // out, so overwriting them is safe.
    while (tail - (other_ = indices_->head.load(std::memory_order_acquire)) > mask_) spin_relax();
  }
  write_seq(message_.data(), seq);
  std::memcpy(slots_ + (tail & mask_) * slot_bytes_, message_.data(), size_);
  own_ = tail + 1;
  // release: publishes the slot contents written above together with the new tail.
  indices_->tail.store(own_, std::memory_order_release);
}

std::uint64_t RawShmRing::receive() {
  const std::uint64_t head = own_;
  if (head == other_) {  // empty as far as the cache knows: look at the real tail
    // acquire: pairs with the producer's release of tail, so the slot contents are visible.
    while (head == (other_ = indices_->tail.load(std::memory_order_acquire))) spin_relax();
  }
  std::memcpy(message_.data(), slots_ + (head & mask_) * slot_bytes_, size_);
  own_ = head + 1;
  // release: the slot has been copied out; the producer may reuse it once it sees this.
  indices_->head.store(own_, std::memory_order_release);
  return read_seq(message_.data());
}

void RawShmRing::cleanup() {
  indices_ = nullptr;
  slots_ = nullptr;
  map_ = SharedMapping();
}

}  // namespace shmbus::bench
