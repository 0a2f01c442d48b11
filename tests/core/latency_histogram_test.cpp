// The shared-memory latency histogram: bucket math (exhaustively where it is cheap), percentiles
// against exact percentiles of the same samples, exact count/sum/max, snapshots and differences,
// and a reader snapshotting while the single writer records.
#include "core/latency_histogram.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <memory>
#include <random>
#include <thread>
#include <vector>

namespace shmbus::core {
namespace {

constexpr std::uint32_t kLast = kLatencyBuckets - 1;
constexpr std::uint64_t k2Pow20 = std::uint64_t{1} << 20;
constexpr std::uint64_t k2Pow36 = std::uint64_t{1} << 36;

// A zeroed histogram on the heap (value-initialisation zeroes the atomics), as in a new segment.
std::unique_ptr<LatencyHistogram> make_histogram() { return std::make_unique<LatencyHistogram>(); }

// True if the reported value is within the stated precision of the true value v.
bool within_precision(std::uint64_t reported, std::uint64_t v) {
  const double diff = std::fabs(static_cast<double>(reported) - static_cast<double>(v));
  return diff <= static_cast<double>(v) * kLatencyRelativeError + 0.5;
}

// Checks the midpoint of bucket b against value v (which must lie in b).
void expect_midpoint_close(std::uint32_t b, std::uint64_t v) {
  ASSERT_TRUE(within_precision(latency_bucket_midpoint(b), v))
      << "bucket " << b << " [" << latency_bucket_lower(b) << ", " << latency_bucket_upper(b)
      << ") midpoint " << latency_bucket_midpoint(b) << " value " << v;
}

TEST(LatencyBucket, ValuesBelow64HaveOneExactBucketEach) {
  for (std::uint64_t v = 0; v < 64; ++v) {
    const std::uint32_t b = latency_bucket(v);
    EXPECT_EQ(b, v);
    EXPECT_EQ(latency_bucket_lower(b), v);
    EXPECT_EQ(latency_bucket_upper(b), v + 1);
    EXPECT_EQ(latency_bucket_midpoint(b), v);
  }
}

TEST(LatencyBucket, EachPowerOfTwoFrom64IsSplitInto32EqualSubBuckets) {
  for (unsigned k = 6; k < 36; ++k) {
    const std::uint64_t base = std::uint64_t{1} << k;
    const std::uint64_t width = std::uint64_t{1} << (k - kLatencySubBucketBits);
    const std::uint32_t first = latency_bucket(base);
    EXPECT_EQ(first, 64 + 32 * (k - 6)) << k;
    for (std::uint32_t i = 0; i < 32; ++i) {
      EXPECT_EQ(latency_bucket_lower(first + i), base + i * width) << k << " " << i;
      EXPECT_EQ(latency_bucket_upper(first + i) - latency_bucket_lower(first + i), width);
    }
    EXPECT_EQ(latency_bucket(2 * base - 1), first + 31) << k;
  }
}

TEST(LatencyBucket, EveryValueUpTo2Pow20LiesInItsBucket) {
  for (std::uint64_t v = 0; v <= k2Pow20; ++v) {
    const std::uint32_t b = latency_bucket(v);
    ASSERT_LT(b, kLatencyBuckets) << v;
    ASSERT_LE(latency_bucket_lower(b), v) << v;
    ASSERT_LT(v, latency_bucket_upper(b)) << v;
  }
}

TEST(LatencyBucket, LargeValuesLieInTheirBuckets) {
  std::mt19937_64 rng(20240601);
  for (int i = 0; i < 1'000'000; ++i) {
    // A random bit width from 21 to 36, then random bits below the top one.
    const unsigned width = 21 + static_cast<unsigned>(rng() % 16);
    const std::uint64_t v = (std::uint64_t{1} << (width - 1)) | (rng() >> (65 - width));
    ASSERT_LT(v, k2Pow36);
    const std::uint32_t b = latency_bucket(v);
    ASSERT_LE(latency_bucket_lower(b), v) << v;
    ASSERT_LT(v, latency_bucket_upper(b)) << v;
  }
}

TEST(LatencyBucket, BucketsAreContiguousAndIncreasingOver0To2Pow36) {
  EXPECT_EQ(latency_bucket_lower(0), 0u);
  EXPECT_EQ(latency_bucket_upper(kLast), k2Pow36);
  EXPECT_EQ(kLatencyRangeNs, k2Pow36);
  for (std::uint32_t b = 0; b < kLatencyBuckets; ++b) {
    const std::uint64_t lower = latency_bucket_lower(b);
    const std::uint64_t upper = latency_bucket_upper(b);
    ASSERT_LT(lower, upper) << b;
    ASSERT_EQ(latency_bucket(lower), b) << b;
    ASSERT_EQ(latency_bucket(upper - 1), b) << b;
    ASSERT_LE(lower, latency_bucket_midpoint(b)) << b;
    ASSERT_LT(latency_bucket_midpoint(b), upper) << b;
    if (b + 1 < kLatencyBuckets) {
      ASSERT_EQ(upper, latency_bucket_lower(b + 1)) << b;
      ASSERT_EQ(latency_bucket(upper), b + 1) << b;
    }
  }
}

TEST(LatencyBucket, MidpointIsWithinTheRelativeErrorOfEveryValueInItsBucket) {
  // Exhaustively below 2^20.
  for (std::uint32_t b = 0; latency_bucket_upper(b) <= k2Pow20; ++b) {
    for (std::uint64_t v = latency_bucket_lower(b); v < latency_bucket_upper(b); ++v) {
      expect_midpoint_close(b, v);
    }
  }
  // Above, at the edges (the error is linear in v, so it peaks at an edge) and just inside them.
  for (std::uint32_t b = latency_bucket(k2Pow20); b < kLatencyBuckets; ++b) {
    const std::uint64_t lower = latency_bucket_lower(b);
    const std::uint64_t upper = latency_bucket_upper(b);
    for (std::uint64_t v : {lower, lower + 1, upper - 2, upper - 1}) expect_midpoint_close(b, v);
  }
}

TEST(LatencyBucket, MidpointIsTheRoundedCentreOfTheBucket) {
  for (std::uint32_t b = 0; b < kLatencyBuckets; ++b) {
    const std::uint64_t lower = latency_bucket_lower(b);
    const std::uint64_t last = latency_bucket_upper(b) - 1;
    ASSERT_EQ(latency_bucket_midpoint(b), (lower + last + 1) / 2) << b;
  }
}

TEST(LatencyBucket, ValuesFrom2Pow36ClampToTheLastBucket) {
  EXPECT_EQ(latency_bucket(k2Pow36 - 1), kLast);
  EXPECT_EQ(latency_bucket(k2Pow36), kLast);
  EXPECT_EQ(latency_bucket(k2Pow36 + 1), kLast);
  EXPECT_EQ(latency_bucket(std::uint64_t{1} << 40), kLast);
  EXPECT_EQ(latency_bucket(std::uint64_t{std::numeric_limits<std::int64_t>::max()}), kLast);
  EXPECT_EQ(latency_bucket(std::numeric_limits<std::uint64_t>::max()), kLast);
}

TEST(LatencyBucket, IsUsableAtCompileTime) {
  static_assert(latency_bucket(0) == 0);
  static_assert(latency_bucket(1000) == latency_bucket(992));
  static_assert(latency_bucket_lower(latency_bucket(1000)) == 992);
  static_assert(latency_bucket_midpoint(latency_bucket(1000)) == 1000);
  SUCCEED();
}

TEST(LatencyHistogramLayout, SizesAndOffsetsArePinned) {
  EXPECT_EQ(sizeof(LatencyHistogram), 8256u);
  EXPECT_EQ(alignof(LatencyHistogram), 64u);
  EXPECT_EQ(offsetof(LatencyHistogram, count), 0u);
  EXPECT_EQ(offsetof(LatencyHistogram, sum_ns), 8u);
  EXPECT_EQ(offsetof(LatencyHistogram, max_ns), 16u);
  EXPECT_EQ(offsetof(LatencyHistogram, buckets), 64u);
  EXPECT_TRUE(std::atomic<std::uint64_t>::is_always_lock_free);
}

TEST(LatencyHistogramLayout, ZeroFilledMemoryIsAnEmptyHistogram) {
  alignas(LatencyHistogram) unsigned char memory[sizeof(LatencyHistogram)];
  std::memset(memory, 0, sizeof memory);
  auto* h = reinterpret_cast<LatencyHistogram*>(memory);  // as a fresh shared-memory segment
  const LatencySnapshot s = take_snapshot(*h);
  EXPECT_EQ(s.count, 0u);
  EXPECT_EQ(s.sum_ns, 0u);
  EXPECT_EQ(s.max_ns, 0u);
  EXPECT_EQ(latency_percentile(s, 0.5), 0u);
  record_latency(*h, 1500);
  EXPECT_EQ(take_snapshot(*h).count, 1u);
  EXPECT_EQ(take_snapshot(*h).max_ns, 1500u);
}

TEST(LatencyRecord, CountSumAndMaxAreExact) {
  auto h = make_histogram();
  std::mt19937_64 rng(11);
  std::uint64_t sum = 0;
  std::uint64_t max = 0;
  for (int i = 0; i < 100'000; ++i) {
    const auto v = static_cast<std::int64_t>(rng() % 5'000'000);
    record_latency(*h, v);
    sum += static_cast<std::uint64_t>(v);
    max = std::max(max, static_cast<std::uint64_t>(v));
  }
  EXPECT_EQ(h->count.load(), 100'000u);
  EXPECT_EQ(h->sum_ns.load(), sum);
  EXPECT_EQ(h->max_ns.load(), max);
  const LatencySnapshot s = take_snapshot(*h);
  EXPECT_EQ(s.count, 100'000u);
  EXPECT_EQ(s.sum_ns, sum);
  EXPECT_EQ(s.max_ns, max);
  EXPECT_EQ(latency_percentile(s, 1.0), max);
}

TEST(LatencyRecord, EachSampleIsCountedInItsOwnBucket) {
  auto h = make_histogram();
  record_latency(*h, 5);
  record_latency(*h, 5);
  record_latency(*h, 1000);
  record_latency(*h, 3'000'000'000);
  const LatencySnapshot s = take_snapshot(*h);
  for (std::uint32_t b = 0; b < kLatencyBuckets; ++b) {
    std::uint64_t expected = 0;
    if (b == 5) expected = 2;
    if (b == latency_bucket(1000)) expected = 1;
    if (b == latency_bucket(3'000'000'000)) expected = 1;
    ASSERT_EQ(s.buckets[b], expected) << b;
  }
}

TEST(LatencyRecord, NegativeLatencyIsRecordedAsZero) {
  auto h = make_histogram();
  record_latency(*h, -1);
  record_latency(*h, -123'456);
  record_latency(*h, std::numeric_limits<std::int64_t>::min());
  const LatencySnapshot s = take_snapshot(*h);
  EXPECT_EQ(s.count, 3u);
  EXPECT_EQ(s.buckets[0], 3u);
  EXPECT_EQ(s.sum_ns, 0u);
  EXPECT_EQ(s.max_ns, 0u);
  EXPECT_EQ(latency_percentile(s, 0.5), 0u);
}

TEST(LatencyRecord, ValuesPastTheRangeKeepAnExactMax) {
  auto h = make_histogram();
  const std::int64_t huge = std::int64_t{100} * 1'000'000'000;  // 100 s, past 2^36 ns
  record_latency(*h, 1000);
  record_latency(*h, huge);
  const LatencySnapshot s = take_snapshot(*h);
  EXPECT_EQ(s.buckets[kLast], 1u);
  EXPECT_EQ(s.max_ns, static_cast<std::uint64_t>(huge));
  EXPECT_EQ(s.sum_ns, static_cast<std::uint64_t>(huge) + 1000);
  EXPECT_EQ(latency_percentile(s, 1.0), static_cast<std::uint64_t>(huge));
  EXPECT_EQ(latency_percentile(s, 0.9), latency_bucket_midpoint(kLast));
  EXPECT_EQ(latency_percentile(s, 0.5), 1000u);
}

TEST(LatencyRecord, ResetZeroesEveryField) {
  auto h = make_histogram();
  const std::initializer_list<std::int64_t> values{0, 7, 64, 1000, 123'456, 99'000'000'000};
  for (std::int64_t v : values) record_latency(*h, v);
  h->reserved[2] = 42;
  reset_latency(*h);
  EXPECT_EQ(h->count.load(), 0u);
  EXPECT_EQ(h->sum_ns.load(), 0u);
  EXPECT_EQ(h->max_ns.load(), 0u);
  for (std::uint64_t r : h->reserved) EXPECT_EQ(r, 0u);
  for (std::uint32_t b = 0; b < kLatencyBuckets; ++b) ASSERT_EQ(h->buckets[b].load(), 0u) << b;
  record_latency(*h, 10);
  EXPECT_EQ(take_snapshot(*h).max_ns, 10u);
}

TEST(LatencySnapshot, CountIsTheSumOfTheBucketsNotTheCountField) {
  auto h = make_histogram();
  record_latency(*h, 100);
  record_latency(*h, 200);
  h->count.store(17);  // as if the reader saw the count store but not the bucket stores
  const LatencySnapshot s = take_snapshot(*h);
  EXPECT_EQ(s.count, 2u);
  EXPECT_EQ(latency_percentile(s, 0.5), latency_bucket_midpoint(latency_bucket(100)));
}

TEST(LatencySnapshot, MaxIsRaisedToTheHighestBucketIfItsStoreIsNotYetSeen) {
  auto h = make_histogram();
  record_latency(*h, 100);
  h->buckets[latency_bucket(5000)].store(1);  // a sample whose max store is not visible yet
  const LatencySnapshot s = take_snapshot(*h);
  EXPECT_EQ(s.max_ns, latency_bucket_lower(latency_bucket(5000)));
  EXPECT_EQ(latency_percentile(s, 1.0), s.max_ns);
  EXPECT_EQ(latency_bucket(latency_percentile(s, 0.99)), latency_bucket(5000));
}

// The percentile of rank ceil(q * n) (rank 1 for q == 0) of sorted samples, as the header defines.
std::uint64_t exact_percentile(const std::vector<std::uint64_t>& sorted, double q) {
  if (q >= 1.0) return sorted.back();
  const auto n = static_cast<double>(sorted.size());
  const auto rank = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::ceil(q * n)));
  return sorted[std::min<std::uint64_t>(rank, sorted.size()) - 1];
}

// Feeds the samples to a histogram and compares its count, sum, max and percentiles with the
// exact ones.
void expect_percentiles_match(std::vector<std::uint64_t> samples) {
  auto h = make_histogram();
  std::uint64_t sum = 0;
  for (std::uint64_t v : samples) {
    record_latency(*h, static_cast<std::int64_t>(v));
    sum += v;
  }
  std::sort(samples.begin(), samples.end());
  const LatencySnapshot s = take_snapshot(*h);
  EXPECT_EQ(s.count, samples.size());
  EXPECT_EQ(s.sum_ns, sum);
  EXPECT_EQ(s.max_ns, samples.back());
  for (double q : {0.0, 0.5, 0.9, 0.99, 0.999, 1.0}) {
    const std::uint64_t exact = exact_percentile(samples, q);
    const std::uint64_t got = latency_percentile(s, q);
    EXPECT_TRUE(within_precision(got, exact))
        << "q " << q << ": got " << got << ", exact " << exact;
    // The same bucket, unless capped at the maximum (which is then between the two).
    if (got != s.max_ns) {
      EXPECT_EQ(latency_bucket(got), latency_bucket(exact)) << "q " << q;
    }
  }
  EXPECT_EQ(latency_percentile(s, 1.0), samples.back());
  EXPECT_EQ(latency_bucket(latency_percentile(s, 0.0)), latency_bucket(samples.front()));
}

constexpr int kSamples = 1'000'000;

TEST(LatencyPercentile, MatchesExactPercentilesOfAUniformDistribution) {
  std::mt19937_64 rng(1);
  std::uniform_int_distribution<std::uint64_t> dist(100, 10'000);
  std::vector<std::uint64_t> samples(kSamples);
  for (auto& v : samples) v = dist(rng);
  expect_percentiles_match(std::move(samples));
}

TEST(LatencyPercentile, MatchesExactPercentilesOfAHeavyTailedLognormal) {
  std::mt19937_64 rng(2);
  std::lognormal_distribution<double> dist(std::log(1000.0), 1.0);  // median 1 us
  std::uniform_real_distribution<double> coin(0.0, 1.0);
  std::vector<std::uint64_t> samples(kSamples);
  for (auto& v : samples) {
    double x = dist(rng);
    if (coin(rng) < 0.002) x *= 5000;  // stalls: a tail out to seconds
    v = static_cast<std::uint64_t>(std::llround(x));
  }
  expect_percentiles_match(std::move(samples));
}

TEST(LatencyPercentile, MatchesExactPercentilesOfAConstant) {
  // 1234 ns is not a bucket midpoint: every percentile below 1 is off by the rounding, within
  // the precision, and q == 1 is exact.
  expect_percentiles_match(std::vector<std::uint64_t>(kSamples, 1234));
  auto h = make_histogram();
  for (int i = 0; i < 1000; ++i) record_latency(*h, 1234);
  const LatencySnapshot s = take_snapshot(*h);
  EXPECT_EQ(latency_percentile(s, 0.5), latency_bucket_midpoint(latency_bucket(1234)));
  EXPECT_EQ(latency_percentile(s, 1.0), 1234u);
}

TEST(LatencyPercentile, MatchesExactPercentilesOfABimodalDistribution) {
  std::mt19937_64 rng(4);
  std::normal_distribution<double> fast(800.0, 50.0);
  std::normal_distribution<double> slow(50'000.0, 5'000.0);
  std::uniform_real_distribution<double> coin(0.0, 1.0);
  std::vector<std::uint64_t> samples(kSamples);
  for (auto& v : samples) {
    const double x = coin(rng) < 0.7 ? fast(rng) : slow(rng);
    v = static_cast<std::uint64_t>(std::max(0.0, std::round(x)));
  }
  expect_percentiles_match(std::move(samples));
}

TEST(LatencyPercentile, MatchesExactPercentilesOfSmallExactValues) {
  std::mt19937_64 rng(5);
  std::vector<std::uint64_t> samples(100'000);
  for (auto& v : samples) v = rng() % 64;
  auto h = make_histogram();
  for (std::uint64_t v : samples) record_latency(*h, static_cast<std::int64_t>(v));
  std::sort(samples.begin(), samples.end());
  const LatencySnapshot s = take_snapshot(*h);
  for (double q : {0.0, 0.1, 0.5, 0.9, 0.99, 1.0}) {
    EXPECT_EQ(latency_percentile(s, q), exact_percentile(samples, q)) << q;  // exact below 64 ns
  }
}

TEST(LatencyPercentile, RankIsCeilOfQTimesCount) {
  auto h = make_histogram();
  for (std::int64_t v : {10, 20, 30, 40}) record_latency(*h, v);
  const LatencySnapshot s = take_snapshot(*h);
  EXPECT_EQ(latency_percentile(s, 0.0), 10u);
  EXPECT_EQ(latency_percentile(s, 0.25), 10u);   // rank 1
  EXPECT_EQ(latency_percentile(s, 0.26), 20u);   // rank 2
  EXPECT_EQ(latency_percentile(s, 0.5), 20u);    // rank 2
  EXPECT_EQ(latency_percentile(s, 0.75), 30u);   // rank 3
  EXPECT_EQ(latency_percentile(s, 0.76), 40u);   // rank 4
  EXPECT_EQ(latency_percentile(s, 1.0), 40u);
  EXPECT_EQ(latency_percentile(s, -1.0), 10u);   // clamped to 0
  EXPECT_EQ(latency_percentile(s, 2.0), 40u);    // clamped to 1
  EXPECT_EQ(latency_percentile(s, std::nan("")), 10u);
}

TEST(LatencyPercentile, EmptySnapshotReportsZero) {
  const LatencySnapshot s;
  for (double q : {0.0, 0.5, 1.0}) EXPECT_EQ(latency_percentile(s, q), 0u) << q;
}

TEST(LatencyPercentile, IsCappedAtTheMax) {
  auto h = make_histogram();
  record_latency(*h, 1217);  // bucket [1216, 1248), midpoint 1232
  const LatencySnapshot s = take_snapshot(*h);
  EXPECT_EQ(latency_bucket_midpoint(latency_bucket(1217)), 1232u);
  EXPECT_EQ(latency_percentile(s, 0.5), 1217u);
}

// Records the samples into h and returns them.
std::vector<std::uint64_t> record_batch(LatencyHistogram& h, std::mt19937_64& rng, int n,
                                        std::uint64_t lo, std::uint64_t hi) {
  std::uniform_int_distribution<std::uint64_t> dist(lo, hi);
  std::vector<std::uint64_t> batch(n);
  for (auto& v : batch) {
    v = dist(rng);
    record_latency(h, static_cast<std::int64_t>(v));
  }
  return batch;
}

TEST(LatencyDifference, EqualsAHistogramFedOnlyTheSecondBatch) {
  auto h = make_histogram();
  auto only_second = make_histogram();
  std::mt19937_64 rng(6);
  record_batch(*h, rng, 200'000, 0, 2'000'000);
  const LatencySnapshot before = take_snapshot(*h);
  const auto second = record_batch(*h, rng, 300'000, 50, 5'000'000);  // sets the new max
  for (std::uint64_t v : second) record_latency(*only_second, static_cast<std::int64_t>(v));
  const LatencySnapshot d = difference(take_snapshot(*h), before);
  const LatencySnapshot expected = take_snapshot(*only_second);
  EXPECT_EQ(d.count, expected.count);
  EXPECT_EQ(d.sum_ns, expected.sum_ns);
  EXPECT_EQ(d.buckets, expected.buckets);
  EXPECT_EQ(d.max_ns, expected.max_ns);  // exact: the second batch holds the maximum
  for (double q : {0.0, 0.5, 0.9, 0.99, 0.999, 1.0}) {
    EXPECT_EQ(latency_percentile(d, q), latency_percentile(expected, q)) << q;
  }
}

TEST(LatencyDifference, MaxIsBoundedByTheHighestNewBucketWhenAnOlderSampleHoldsTheMax) {
  auto h = make_histogram();
  record_latency(*h, 9'000'000);
  const LatencySnapshot before = take_snapshot(*h);
  record_latency(*h, 1000);
  record_latency(*h, 5003);  // bucket [4992, 5120)
  const LatencySnapshot d = difference(take_snapshot(*h), before);
  EXPECT_EQ(d.count, 2u);
  EXPECT_EQ(d.sum_ns, 6003u);
  EXPECT_EQ(d.max_ns, latency_bucket_upper(latency_bucket(5003)) - 1);
  EXPECT_EQ(d.max_ns, 5119u);
  EXPECT_EQ(latency_percentile(d, 1.0), 5119u);
  EXPECT_EQ(latency_percentile(d, 0.5), latency_bucket_midpoint(latency_bucket(1000)));
}

TEST(LatencyDifference, MaxPastTheRangeIsTheLaterMax) {
  auto h = make_histogram();
  record_latency(*h, 1000);
  const LatencySnapshot before = take_snapshot(*h);
  record_latency(*h, std::int64_t{200} * 1'000'000'000);
  const LatencySnapshot d = difference(take_snapshot(*h), before);
  EXPECT_EQ(d.count, 1u);
  EXPECT_EQ(d.max_ns, 200'000'000'000u);
}

TEST(LatencyDifference, OfASnapshotWithItselfIsEmpty) {
  auto h = make_histogram();
  std::mt19937_64 rng(8);
  record_batch(*h, rng, 1000, 0, 100'000);
  const LatencySnapshot s = take_snapshot(*h);
  const LatencySnapshot d = difference(s, s);
  EXPECT_EQ(d.count, 0u);
  EXPECT_EQ(d.sum_ns, 0u);
  EXPECT_EQ(d.max_ns, 0u);
  EXPECT_EQ(latency_percentile(d, 0.99), 0u);
}

TEST(LatencyDifference, ClampsAtZeroWhenBeforeIsNotOlder) {
  auto h = make_histogram();
  std::mt19937_64 rng(9);
  for (int i = 0; i < 10; ++i) record_latency(*h, 500);
  record_batch(*h, rng, 1000, 1000, 100'000);
  const LatencySnapshot before = take_snapshot(*h);
  reset_latency(*h);
  record_latency(*h, 500);      // its bucket held 10 before: clamped to 0, not wrapped
  record_latency(*h, 300'000);  // a bucket that was empty before the reset
  const LatencySnapshot d = difference(take_snapshot(*h), before);
  for (std::uint32_t b = 0; b < kLatencyBuckets; ++b) {
    const std::uint64_t expected = b == latency_bucket(300'000) ? 1 : 0;
    ASSERT_EQ(d.buckets[b], expected) << b;
  }
  EXPECT_EQ(d.count, 1u);
  EXPECT_EQ(d.sum_ns, 0u);  // 300'500 is less than the sum before the reset
  EXPECT_EQ(d.max_ns, 300'000u);
}

TEST(LatencyConcurrency, ReaderSeesMonotonicSelfConsistentSnapshotsWhileTheWriterRecords) {
  auto h = make_histogram();
  constexpr int kRecords = 2'000'000;
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (std::int64_t i = 0; i < kRecords; ++i) record_latency(*h, (i * 7919) % 100'000);
    done.store(true, std::memory_order_release);  // release: the test's own flag, not the bus's
  });
  LatencySnapshot previous;
  int snapshots = 0;
  // acquire: pairs with the writer's release, so the final snapshot below sees every record.
  while (!done.load(std::memory_order_acquire)) {
    const LatencySnapshot s = take_snapshot(*h);
    ++snapshots;
    ASSERT_GE(s.count, previous.count);
    ASSERT_LE(s.count, static_cast<std::uint64_t>(kRecords));
    for (std::uint32_t b = 0; b < kLatencyBuckets; ++b) {
      ASSERT_GE(s.buckets[b], previous.buckets[b]) << b;  // each counter only grows
    }
    if (s.count > 0) {
      const std::uint64_t p99 = latency_percentile(s, 0.99);
      ASSERT_LE(p99, s.max_ns);
      ASSERT_LT(p99, 100'000u);
    }
    previous = s;
  }
  writer.join();
  const LatencySnapshot last = take_snapshot(*h);
  EXPECT_EQ(last.count, static_cast<std::uint64_t>(kRecords));
  EXPECT_EQ(h->count.load(), static_cast<std::uint64_t>(kRecords));
  EXPECT_EQ(last.max_ns, 99'999u);
  EXPECT_GT(snapshots, 0);
}

}  // namespace
}  // namespace shmbus::core
