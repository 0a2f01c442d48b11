#include "bench/harness/raw_seq_ring.hpp"

#include <algorithm>
#include <bit>
#include <cstring>
#include <new>
#include <stdexcept>

#include <fmt/format.h>

#include "bench/harness/spin.hpp"

namespace shmbus::bench {

namespace {

// The slots take the bytes of the ring shmbus's throughput transports stream through
// (bench/transports/shmbus_transport.cpp), so neither side buffers more against the moments the
// scheduler stops its peer: 16384 slots of 64-byte messages.
constexpr std::size_t kRingBytes = std::size_t{1} << 20;
constexpr std::uint64_t kMinSlots = 8;      // so that slot_count / 8 (the lazy store) is >= 1
constexpr std::uint64_t kStoresPerLap = 8;  // how often per lap the consumer shares its index

}  // namespace

std::atomic_ref<std::uint64_t> RawSeqRing::ready_word(std::uint64_t index) const {
  // The slot starts on a 64-byte boundary (the mapping is page aligned, slots are multiples of
  // 64 bytes), so its first 8 bytes are suitably aligned for an atomic reference.
  return std::atomic_ref<std::uint64_t>(*reinterpret_cast<std::uint64_t*>(slot(index)));
}

void RawSeqRing::prepare(const BenchConfig& config) {
  size_ = config.size;
  slot_bytes_ = (size_ + 63) & ~std::size_t{63};
  slot_count_ = std::max<std::uint64_t>(kMinSlots, std::bit_floor(kRingBytes / slot_bytes_));
  mask_ = slot_count_ - 1;
  store_every_ = slot_count_ / kStoresPerLap;

  map_ = SharedMapping(sizeof(ConsumerIndex) + slot_count_ * slot_bytes_);
  consumer_index_ = new (map_.data()) ConsumerIndex{};
  slots_ = static_cast<char*>(map_.data()) + sizeof(ConsumerIndex);
  for (std::uint64_t k = 0; k < slot_count_; ++k) {
    // relaxed: written before fork, which orders it before both children's first access.
    ready_word(k).store(k - 2 * slot_count_, std::memory_order_relaxed);
  }
  own_ = 0;
  cached_copied_ = 0;
  // A recognisable filler so the bytes after the sequence number are real data, not zero pages.
  message_.assign(size_, '\x5a');
}

void RawSeqRing::send(std::uint64_t seq) {
  const std::uint64_t index = own_;
  if (seq != index && seq != kEndMarker) [[unlikely]] {
    throw std::logic_error(fmt::format(
        "raw-seq: message {} sent at index {}: the ring needs the harness's stream 0, 1, 2...",
        seq, index));
  }
  if (index - cached_copied_ > mask_) {  // full as far as the cache knows: look at the real index
    // acquire: pairs with the consumer's release store; its copies out of every slot below the
    // index it stored are done, so overwriting them is safe.
    while (index - (cached_copied_ = consumer_index_->copied.load(std::memory_order_acquire)) >
           mask_) {
      spin_relax();
    }
  }
  std::memcpy(slot(index) + kSeqBytes, message_.data() + kSeqBytes, size_ - kSeqBytes);
  own_ = index + 1;
  // release: publishes the bytes copied above together with the word that says they are fresh.
  ready_word(index).store(seq, std::memory_order_release);
}

std::uint64_t RawSeqRing::receive() {
  const std::uint64_t index = own_;
  const std::atomic_ref<std::uint64_t> word = ready_word(index);
  std::uint64_t seq;
  // acquire: pairs with the producer's release store of this word, so the slot's other bytes,
  // written before it, are visible.
  while ((seq = word.load(std::memory_order_acquire)) != index && seq != kEndMarker) spin_relax();
  std::memcpy(message_.data() + kSeqBytes, slot(index) + kSeqBytes, size_ - kSeqBytes);
  own_ = index + 1;
  if ((own_ & (store_every_ - 1)) == 0) {
    // release: the copies out of every slot below own_ (above) happen before the producer, which
    // acquires this index, overwrites them.
    consumer_index_->copied.store(own_, std::memory_order_release);
  }
  return seq;
}

void RawSeqRing::cleanup() {
  consumer_index_ = nullptr;
  slots_ = nullptr;
  map_ = SharedMapping();
}

}  // namespace shmbus::bench
