#include "bench/fanout/record_check.hpp"

#include <cstring>

#include <fmt/format.h>

#include "bench/harness/transport.hpp"

namespace shmbus::bench {

void fill_record(std::byte* payload, std::size_t size, std::uint64_t sequence) {
  write_seq(payload, sequence);
  std::memset(payload + kSeqBytes, std::to_integer<int>(fill_byte(sequence)), size - kSeqBytes);
}

void RecordCheck::operator()(const Message& m) noexcept {
  if (!failure_.empty()) return;
  const bool in_order = policy_ == Policy::block ? m.sequence == expected_ && m.lost_before == 0
                                                 : m.sequence == expected_ + m.lost_before;
  if (!in_order) return fail(m, "out of order");
  if (m.payload.size() != size_) return fail(m, "of the wrong size");
  if (read_seq(m.payload.data()) != m.sequence) return fail(m, "carrying another sequence");
  const std::byte fill = fill_byte(m.sequence);
  for (std::size_t i = kSeqBytes; i < size_; ++i) {
    if (m.payload[i] != fill) return fail(m, "with wrong content");
  }
  expected_ = m.sequence + 1;
  ++received_;
  lost_ += m.lost_before;
}

void RecordCheck::fail(const Message& m, const char* what) noexcept {
  try {
    failure_ = fmt::format(
        "record {} {} (expected sequence {}, lost_before {}, {} bytes, first 8 bytes say {})",
        m.sequence, what, expected_, m.lost_before, m.payload.size(),
        m.payload.size() >= kSeqBytes ? read_seq(m.payload.data()) : 0);
  } catch (...) {
    failure_ = "a wrong record (and no memory to describe it)";
  }
}

}  // namespace shmbus::bench
