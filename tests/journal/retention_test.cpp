// The retention decision (journal/retention.hpp) without files.
#include "journal/retention.hpp"

#include <vector>

#include <gtest/gtest.h>

namespace shmbus::journal {
namespace {

using namespace std::chrono_literals;

constexpr std::int64_t kHour = 3600ll * 1'000'000'000;
constexpr std::int64_t kNow = 1000 * kHour;

TEST(Retention, KeepsEverythingWithoutLimits) {
  const std::vector<RetainedSegment> closed = {{1, 100, 1}, {10, 100, 2}};
  EXPECT_EQ(segments_to_delete(closed, 100, 0, 0s, kNow), 0u);
}

TEST(Retention, DeletesTheOldestUntilTheTotalWithTheCurrentSegmentFits) {
  const std::vector<RetainedSegment> closed = {{1, 100, 0}, {10, 100, 0}, {20, 100, 0}};
  EXPECT_EQ(segments_to_delete(closed, 50, 350, 0s, kNow), 0u);
  EXPECT_EQ(segments_to_delete(closed, 50, 349, 0s, kNow), 1u);
  EXPECT_EQ(segments_to_delete(closed, 50, 150, 0s, kNow), 2u);
  // Never the current segment, even when it alone is over the limit.
  EXPECT_EQ(segments_to_delete(closed, 1000, 10, 0s, kNow), 3u);
}

TEST(Retention, DeletesOnlyAPrefixOfSegmentsOlderThanTheAge) {
  const std::vector<RetainedSegment> closed = {
      {1, 100, kNow - 5 * kHour}, {10, 100, kNow - 3 * kHour}, {20, 100, kNow - kHour / 2},
      {30, 100, kNow - 4 * kHour}};  // out of order: kept, its predecessor is young
  EXPECT_EQ(segments_to_delete(closed, 0, 0, 2h, kNow), 2u);
  EXPECT_EQ(segments_to_delete(closed, 0, 0, 6h, kNow), 0u);
}

TEST(Retention, NeverDeletesBecauseOfAgeWhenTheTimeIsUnknown) {
  const std::vector<RetainedSegment> closed = {{1, 100, 0}, {10, 100, kNow - 5 * kHour}};
  EXPECT_EQ(segments_to_delete(closed, 0, 0, 1h, kNow), 0u);
}

TEST(Retention, EitherLimitDeletes) {
  const std::vector<RetainedSegment> closed = {
      {1, 100, kNow - 5 * kHour}, {10, 100, kNow - kHour / 2}, {20, 100, kNow - kHour / 4}};
  EXPECT_EQ(segments_to_delete(closed, 0, 1000, 1h, kNow), 1u);  // age only
  EXPECT_EQ(segments_to_delete(closed, 0, 150, 1h, kNow), 2u);   // then size
}

}  // namespace
}  // namespace shmbus::journal
