// A latency histogram that lives in shared memory: HDR-style log-linear buckets, written by exactly
// one thread without locks and read at any time by tools in other processes through read-only
// mappings. There is one per subscriber, in the channel's control segment (ipc/control_layout.hpp).
//
// Buckets (1024 of them, covering [0, 2^36) ns, about 68.7 s):
//   - 0..63 ns: one bucket per nanosecond, so small values are exact;
//   - a value in [2^k, 2^(k+1)), k >= 6, falls in one of 32 equal sub-buckets of width 2^(k-5);
//   - values >= 2^36 ns go into the last bucket; max_ns still holds the exact maximum.
// The index is 32*s + (v >> s) with s = max(bit_width(v), 6) - 6, so [32, 64) continues the exact
// range with width 1 and every later power of two adds 32 buckets.
//
// Precision: a bucket of width w starts at a value L >= 32w, and its midpoint L + w/2 is at most
// w/2 <= L/64 away from any value in it. So a percentile, reported as its bucket's midpoint, is
// within kLatencyRelativeError (1/64) of the true sample value, plus 0.5 ns for the rounding of the
// midpoint (values >= 2^36 ns excepted: their bucket has no upper bound; max_ns stays exact).
//
// Memory layout (LatencyHistogram, 8256 bytes, 64-byte aligned; all little-endian u64):
//   offset  0  count      samples recorded
//   offset  8  sum_ns     sum of the recorded values
//   offset 16  max_ns     largest value recorded
//   offset 24  reserved   5 words, zero
//   offset 64  buckets    1024 counters
// An all-zero histogram is a valid empty one, so a freshly created segment needs no initialisation.
//
// Concurrency (the single-writer rule):
//   1. Only one thread ever writes a given histogram (the owning subscriber's polling thread), so
//      each field changes by a relaxed load and a relaxed store: no other writer can slip in
//      between, and a locked read-modify-write would cost the hot path for nothing.
//   2. Readers only need each counter to become visible eventually and never to go backwards.
//      Per-location coherence gives both even with relaxed order: a reader that loads one bucket
//      twice never sees the second value smaller than the first (until a reset).
//   3. Nothing orders the fields against each other, so a snapshot taken while the writer records
//      is torn in time (a sample may be in its bucket but not yet in count or sum_ns, or the other
//      way round). That is fine: the snapshot's count is recomputed as the sum of the buckets it
//      read, so its percentiles are self-consistent, and its max_ns is raised to the lower bound of
//      its highest non-empty bucket if the max store was not yet visible.
//   4. reset_latency() is for the owner before it starts recording; a reader that overlaps it sees
//      a mix of old and zero counters (difference() clamps the resulting negatives at 0).
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "layout.hpp"

namespace shmbus::core {

inline constexpr unsigned kLatencySubBucketBits = 5;      // 32 sub-buckets per power of two
inline constexpr std::uint32_t kLatencyBuckets = 1024;    // covers [0, 2^36) ns (~68.7 s)
// A percentile is within this fraction of the true value (plus 0.5 ns), see the top of the file.
inline constexpr double kLatencyRelativeError = 1.0 / 64;

namespace latency_detail {
inline constexpr std::uint64_t kSubBuckets = std::uint64_t{1} << kLatencySubBucketBits;  // 32
// Below 2 * kSubBuckets every bucket is one nanosecond wide.
inline constexpr unsigned kExactBits = kLatencySubBucketBits + 1;  // 6: [0, 64) is exact

// The shift of the power of two that holds a value of this bit width: 0 in the exact range.
constexpr unsigned shift_for_width(unsigned bit_width) noexcept {
  return bit_width > kExactBits ? bit_width - kExactBits : 0;
}
// The shift of a bucket's power of two (its width is 1 << shift).
constexpr unsigned shift_for_bucket(std::uint32_t bucket) noexcept {
  return bucket < 2 * kSubBuckets ? 0 : (bucket >> kLatencySubBucketBits) - 1;
}
}  // namespace latency_detail

// The bucket that holds ns; values past the covered range go into the last bucket.
constexpr std::uint32_t latency_bucket(std::uint64_t ns) noexcept {
  const unsigned s = latency_detail::shift_for_width(static_cast<unsigned>(std::bit_width(ns)));
  // ns >> s is in [32, 64) once s > 0; s <= 58, so neither term overflows.
  const std::uint64_t index = (std::uint64_t{s} << kLatencySubBucketBits) + (ns >> s);
  return static_cast<std::uint32_t>(std::min<std::uint64_t>(index, kLatencyBuckets - 1));
}

// The smallest value in a bucket (bucket < kLatencyBuckets).
constexpr std::uint64_t latency_bucket_lower(std::uint32_t bucket) noexcept {
  const unsigned s = latency_detail::shift_for_bucket(bucket);
  return (std::uint64_t{bucket} - (std::uint64_t{s} << kLatencySubBucketBits)) << s;
}

// One past the largest value of a bucket's range. For the last bucket that is 2^36, the end of the
// covered range, although it also receives every larger value.
constexpr std::uint64_t latency_bucket_upper(std::uint32_t bucket) noexcept {
  const unsigned s = latency_detail::shift_for_bucket(bucket);
  return latency_bucket_lower(bucket) + (std::uint64_t{1} << s);
}

// (lower + upper - 1) / 2, rounded half up: the value reported for every sample in the bucket.
constexpr std::uint64_t latency_bucket_midpoint(std::uint32_t bucket) noexcept {
  return (latency_bucket_lower(bucket) + latency_bucket_upper(bucket)) / 2;
}

// The end of the covered range: values from here on share the last bucket.
inline constexpr std::uint64_t kLatencyRangeNs = latency_bucket_upper(kLatencyBuckets - 1);

static_assert(kLatencyRangeNs == std::uint64_t{1} << 36);
static_assert(latency_bucket(kLatencyRangeNs - 1) == kLatencyBuckets - 1);
static_assert(latency_bucket(kLatencyRangeNs) == kLatencyBuckets - 1);
static_assert(latency_bucket(63) == 63 && latency_bucket(64) == 64 && latency_bucket(65) == 64);
static_assert(latency_bucket_lower(64) == 64 && latency_bucket_upper(64) == 66);
static_assert(latency_bucket_midpoint(64) == 65 && latency_bucket_midpoint(7) == 7);

// In shared memory: see the layout and the single-writer rule at the top of the file.
struct alignas(kCacheLine) LatencyHistogram {
  std::atomic<std::uint64_t> count;   // samples recorded
  std::atomic<std::uint64_t> sum_ns;  // sum of the recorded values (a Prometheus summary's _sum)
  std::atomic<std::uint64_t> max_ns;  // largest value recorded (exact)
  std::uint64_t reserved[5];          // zero; keeps the buckets on their own cache lines
  std::atomic<std::uint64_t> buckets[kLatencyBuckets];
};
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);
static_assert(sizeof(std::atomic<std::uint64_t>) == 8);
static_assert(std::is_standard_layout_v<LatencyHistogram>);
static_assert(alignof(LatencyHistogram) == 64);
static_assert(offsetof(LatencyHistogram, count) == 0);
static_assert(offsetof(LatencyHistogram, sum_ns) == 8);
static_assert(offsetof(LatencyHistogram, max_ns) == 16);
static_assert(offsetof(LatencyHistogram, reserved) == 24);
static_assert(offsetof(LatencyHistogram, buckets) == 64);
static_assert(sizeof(LatencyHistogram) == 64 + 8 * kLatencyBuckets);

namespace latency_detail {
// The single writer's increment: a relaxed load and a relaxed store, never a locked RMW.
inline void add(std::atomic<std::uint64_t>& field, std::uint64_t n) noexcept {
  // relaxed: only this thread writes the field (single-writer rule), so the load reads its own
  // last store; readers need no order between fields (the snapshot recomputes count).
  const std::uint64_t v = field.load(std::memory_order_relaxed);
  // relaxed: a lone store of a value only this thread produces; per-location coherence keeps it
  // monotonic for readers, which is all they need.
  field.store(v + n, std::memory_order_relaxed);
}
}  // namespace latency_detail

// Records one latency. Hot path; only the histogram's single writer may call it. A negative
// latency (the two processes' clocks disagree slightly) is recorded as 0.
inline void record_latency(LatencyHistogram& h, std::int64_t ns) noexcept {
  const std::uint64_t v = ns < 0 ? 0 : static_cast<std::uint64_t>(ns);
  latency_detail::add(h.buckets[latency_bucket(v)], 1);
  latency_detail::add(h.count, 1);
  latency_detail::add(h.sum_ns, v);
  // relaxed: single writer, this reads its own last store; nothing else is ordered by it.
  if (v > h.max_ns.load(std::memory_order_relaxed)) {
    // relaxed: single writer; readers tolerate a stale max (take_snapshot raises it to the highest
    // non-empty bucket), so it needs no order against the bucket store above.
    h.max_ns.store(v, std::memory_order_relaxed);
  }
}

// Zeroes every field. Called by the owner (the single writer) before it starts recording.
inline void reset_latency(LatencyHistogram& h) noexcept {
  // relaxed (all stores below): single writer; a reader overlapping the reset sees some counters
  // old and some zero, which difference() clamps, and nothing else is published through them.
  h.count.store(0, std::memory_order_relaxed);
  h.sum_ns.store(0, std::memory_order_relaxed);  // relaxed: as above
  h.max_ns.store(0, std::memory_order_relaxed);  // relaxed: as above
  for (std::uint64_t& r : h.reserved) r = 0;  // never read by anyone, so plain stores
  // relaxed: as above; each bucket is independent of the others.
  for (std::atomic<std::uint64_t>& b : h.buckets) b.store(0, std::memory_order_relaxed);
}

// A copy of a histogram taken by a reader, in private memory.
struct LatencySnapshot {
  std::uint64_t count = 0;   // the sum of `buckets` (not the histogram's count field)
  std::uint64_t sum_ns = 0;
  std::uint64_t max_ns = 0;
  std::array<std::uint64_t, kLatencyBuckets> buckets{};
};

namespace latency_detail {
// The highest non-empty bucket, or kLatencyBuckets if every bucket is empty.
inline std::uint32_t highest_bucket(const LatencySnapshot& s) noexcept {
  for (std::uint32_t b = kLatencyBuckets; b-- > 0;) {
    if (s.buckets[b] != 0) return b;
  }
  return kLatencyBuckets;
}
}  // namespace latency_detail

// Copies a histogram that its writer may be updating at the same time. The buckets are read one by
// one, so the snapshot's count is the sum of the buckets read, which keeps its percentiles
// self-consistent; max_ns is raised to the lower bound of the highest non-empty bucket if the
// writer's max store was not yet visible.
inline LatencySnapshot take_snapshot(const LatencyHistogram& h) noexcept {
  LatencySnapshot s;
  // relaxed: sum and max are independent statistics; no order is needed against the buckets (the
  // snapshot is allowed to be torn in time, see the top of the file).
  s.sum_ns = h.sum_ns.load(std::memory_order_relaxed);
  s.max_ns = h.max_ns.load(std::memory_order_relaxed);  // relaxed: as above
  for (std::uint32_t b = 0; b < kLatencyBuckets; ++b) {
    // relaxed: each counter only needs to be some recent value; coherence keeps it monotonic.
    s.buckets[b] = h.buckets[b].load(std::memory_order_relaxed);
    s.count += s.buckets[b];
  }
  const std::uint32_t top = latency_detail::highest_bucket(s);
  if (top < kLatencyBuckets) s.max_ns = std::max(s.max_ns, latency_bucket_lower(top));
  return s;
}

// What was recorded between two snapshots of the same histogram: the bucket-wise difference,
// clamped at 0 where `before` is not older (e.g. the histogram was reset in between). count is
// the sum of the difference's buckets; sum_ns is after - before, or 0 if that is negative. max_ns
// is the largest value the highest non-empty bucket of the difference can hold, but never above
// after.max_ns (so it is exact when the later batch set the maximum); for the last bucket, which
// has no upper bound, it is after.max_ns. 0 if nothing was recorded in between.
inline LatencySnapshot difference(const LatencySnapshot& after,
                                  const LatencySnapshot& before) noexcept {
  LatencySnapshot d;
  for (std::uint32_t b = 0; b < kLatencyBuckets; ++b) {
    d.buckets[b] = after.buckets[b] > before.buckets[b] ? after.buckets[b] - before.buckets[b] : 0;
    d.count += d.buckets[b];
  }
  d.sum_ns = after.sum_ns > before.sum_ns ? after.sum_ns - before.sum_ns : 0;
  const std::uint32_t top = latency_detail::highest_bucket(d);
  if (top == kLatencyBuckets - 1) {
    d.max_ns = after.max_ns;
  } else if (top < kLatencyBuckets) {
    d.max_ns = std::min(latency_bucket_upper(top) - 1, after.max_ns);
  }
  return d;
}

// The value at quantile q in [0, 1]: the midpoint of the bucket that holds the sample of rank
// ceil(q * count) (rank 1 for q == 0), capped at max_ns. q >= 1 returns max_ns exactly; q is
// clamped to [0, 1] (NaN counts as 0). 0 if the snapshot is empty.
inline std::uint64_t latency_percentile(const LatencySnapshot& s, double q) noexcept {
  if (s.count == 0) return 0;
  if (q >= 1.0) return s.max_ns;
  std::uint64_t rank = 1;
  if (q > 0.0) {
    const double r = std::ceil(q * static_cast<double>(s.count));
    if (r >= static_cast<double>(s.count)) {
      rank = s.count;
    } else if (r > 1.0) {
      rank = static_cast<std::uint64_t>(r);
    }
  }
  std::uint64_t seen = 0;
  for (std::uint32_t b = 0; b < kLatencyBuckets; ++b) {
    seen += s.buckets[b];
    if (seen >= rank) return std::min(latency_bucket_midpoint(b), s.max_ns);
  }
  return s.max_ns;  // unreachable while count is the sum of the buckets
}

}  // namespace shmbus::core
