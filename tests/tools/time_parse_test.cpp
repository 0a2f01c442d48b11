// Times on the command line (tools/time_parse.hpp) and local times in text output
// (iso8601_local_ns), with TZ set explicitly: every form accepted, the DST edges of two zones, and
// bad inputs, each with a message naming what is wrong.
#include <gtest/gtest.h>

#include <cstdlib>
#include <optional>
#include <string>

#include "tools/format.hpp"
#include "tools/time_parse.hpp"

namespace {

using shmbus::tools::iso8601_local_ns;
using shmbus::tools::parse_time_point;

constexpr std::int64_t kSecond = 1'000'000'000;
// 2026-12-03T09:23:08Z
constexpr std::int64_t kDecember3 = 1'796'289'788 * kSecond;
// An arbitrary "now" for relative times.
constexpr std::int64_t kNow = 1'800'000'000 * kSecond + 123;

// Sets TZ for one test and puts the old value back.
class ZoneTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const char* old = std::getenv("TZ")) saved_ = old;
  }
  void TearDown() override {
    if (saved_) {
      setenv("TZ", saved_->c_str(), 1);
    } else {
      unsetenv("TZ");
    }
  }
  static void zone(const char* name) { setenv("TZ", name, 1); }

 private:
  std::optional<std::string> saved_;
};

std::int64_t parsed(const std::string& text) {
  const auto t = parse_time_point(text, kNow);
  EXPECT_TRUE(t.has_value()) << text << ": " << (t ? "" : t.error());
  return t.value_or(0);
}

std::string error_of(const std::string& text) {
  const auto t = parse_time_point(text, kNow);
  EXPECT_FALSE(t.has_value()) << text << " was accepted as " << t.value_or(0);
  return t ? std::string() : t.error();
}

TEST_F(ZoneTest, IntegerNanosecondsAndUtcIsoAreReadAsBefore) {
  zone("America/New_York");
  EXPECT_EQ(parsed("1795773600000000000"), 1'795'773'600'000'000'000);
  EXPECT_EQ(parsed("2026-12-03T09:23:08Z"), kDecember3);
  EXPECT_EQ(parsed("2026-12-03t09:23:08.25z"), kDecember3 + 250'000'000);
  EXPECT_EQ(parsed("2026-12-03T09:23:08.123456789Z"), kDecember3 + 123'456'789);
  EXPECT_EQ(parsed("  2026-12-03T09:23:08Z "), kDecember3);
  EXPECT_EQ(parsed("2026-12-03T09:23:60Z"), kDecember3 + 52 * kSecond);  // leap second: :09:00
}

TEST_F(ZoneTest, ExplicitOffsetsInEveryWrittenForm) {
  zone("Asia/Tokyo");  // must not matter
  EXPECT_EQ(parsed("2026-12-03T10:23:08+01:00"), kDecember3);
  EXPECT_EQ(parsed("2026-12-03 10:23:08+0100"), kDecember3);
  EXPECT_EQ(parsed("2026-12-03 10:23:08+01"), kDecember3);
  EXPECT_EQ(parsed("2026-12-03T04:23:08.5-05:00"), kDecember3 + 500'000'000);
  EXPECT_EQ(parsed("2026-12-03T14:53:08+05:30"), kDecember3);
}

TEST_F(ZoneTest, LocalTimeFollowsTzIncludingItsSummerTime) {
  zone("Europe/London");
  EXPECT_EQ(parsed("2026-12-03 09:23:08"), kDecember3);  // GMT
  EXPECT_EQ(parsed("2026-12-03T09:23:08.000000001"), kDecember3 + 1);
  EXPECT_EQ(parsed("2026-07-01 12:00:00"), parsed("2026-07-01T11:00:00Z"));  // BST
  EXPECT_EQ(parsed("2026-12-03 09:23"), kDecember3 - 8 * kSecond);
  EXPECT_EQ(parsed("2026-12-03"), parsed("2026-12-03T00:00:00Z"));
  zone(":America/New_York");  // glibc's form, with the colon
  EXPECT_EQ(parsed("2026-12-03 04:23:08"), kDecember3);
  zone("/usr/share/zoneinfo/Asia/Kolkata");
  EXPECT_EQ(parsed("2026-12-03 14:53:08"), kDecember3);
  zone("");  // set but empty: UTC
  EXPECT_EQ(parsed("2026-12-03 09:23:08"), kDecember3);
}

TEST_F(ZoneTest, TheSkippedHourWhenClocksGoForwardIsAnErrorNamingTheOffsets) {
  zone("America/New_York");  // 2026-03-08 02:00 EST -> 03:00 EDT
  EXPECT_EQ(parsed("2026-03-08 01:59:59"), parsed("2026-03-08T06:59:59Z"));
  EXPECT_EQ(parsed("2026-03-08 03:00:00"), parsed("2026-03-08T07:00:00Z"));
  const std::string e = error_of("2026-03-08 02:30");
  EXPECT_NE(e.find("'2026-03-08 02:30' does not exist in America/New_York"), std::string::npos)
      << e;
  EXPECT_NE(e.find("EST -05:00 to EDT -04:00"), std::string::npos) << e;
  EXPECT_NE(e.find("2026-03-08T02:30-05:00"), std::string::npos) << e;
  EXPECT_EQ(parsed("2026-03-08T02:30-05:00"), parsed("2026-03-08T07:30:00Z"));
}

TEST_F(ZoneTest, TheRepeatedHourWhenClocksGoBackIsAnErrorOfferingBothOffsets) {
  zone("Europe/London");  // 2026-10-25 02:00 BST -> 01:00 GMT
  const std::string e = error_of("2026-10-25 01:30:00");
  EXPECT_NE(e.find("occurs twice in Europe/London"), std::string::npos) << e;
  EXPECT_NE(e.find("2026-10-25T01:30:00+01:00 or 2026-10-25T01:30:00+00:00"), std::string::npos)
      << e;
  EXPECT_EQ(parsed("2026-10-25T01:30:00+01:00"), parsed("2026-10-25T00:30:00Z"));
  EXPECT_EQ(parsed("2026-10-25 00:59:59"), parsed("2026-10-24T23:59:59Z"));
  EXPECT_EQ(parsed("2026-10-25 02:00:00"), parsed("2026-10-25T02:00:00Z"));
}

TEST_F(ZoneTest, RelativeTimesCountFromNow) {
  EXPECT_EQ(parsed("now"), kNow);
  EXPECT_EQ(parsed("-30s"), kNow - 30 * kSecond);
  EXPECT_EQ(parsed("-10m"), kNow - 600 * kSecond);
  EXPECT_EQ(parsed("-2h"), kNow - 7200 * kSecond);
  EXPECT_EQ(parsed("-1d"), kNow - 86'400 * kSecond);
  EXPECT_EQ(parsed("-500ms"), kNow - 500'000'000);
  EXPECT_EQ(parsed("+1h"), kNow + 3600 * kSecond);
  EXPECT_EQ(parsed("-5"), -5);  // no unit: nanoseconds since the epoch, as before
}

TEST_F(ZoneTest, BadInputsAreRefusedWithWhatIsWrong) {
  zone("Europe/London");
  EXPECT_EQ(error_of(""), "empty time");
  EXPECT_NE(error_of("yesterday").find("'yesterday': expected"), std::string::npos);
  EXPECT_NE(error_of("-10x").find("unknown unit 'x'"), std::string::npos);
  EXPECT_NE(error_of("-99999999999d").find("too far from now"), std::string::npos);
  EXPECT_NE(error_of("99999999999999999999").find("beyond the range"), std::string::npos);
  EXPECT_NE(error_of("2026-13-01 10:00").find("no such date"), std::string::npos);
  EXPECT_NE(error_of("2026-02-29").find("no such date"), std::string::npos);
  EXPECT_EQ(parsed("2028-02-29"), parsed("2028-02-29T00:00:00Z"));  // a leap year
  EXPECT_NE(error_of("2026-12-03 24:00").find("no such date"), std::string::npos);
  EXPECT_NE(error_of("2026-12-03 09:23:08+25:00").find("'+25:00' after the time"),
            std::string::npos);
  EXPECT_NE(error_of("2026-12-03 09:23:08 UTC").find("' UTC' after the time"), std::string::npos);
  EXPECT_NE(error_of("2026-12-03 09:23:08.1234567891").find("expected"), std::string::npos);
  EXPECT_NE(error_of("2026-12-03 09:23:08.").find("expected"), std::string::npos);
  EXPECT_NE(error_of("2026-1-3 9:2:8").find("expected"), std::string::npos);
  EXPECT_NE(error_of("1600-01-01T00:00:00Z").find("years 1678 to 2261"), std::string::npos);
  zone("Nowhere/Atlantis");
  const std::string e = error_of("2026-12-03 09:23:08");
  EXPECT_NE(e.find("TZ='Nowhere/Atlantis' names no zone"), std::string::npos) << e;
  EXPECT_EQ(parsed("2026-12-03T09:23:08Z"), kDecember3);  // no zone needed
}

TEST_F(ZoneTest, LocalTimesInTextCarryTheOffsetAndZWhereItIsZero) {
  zone("UTC");
  EXPECT_EQ(iso8601_local_ns(kDecember3 + 5), "2026-12-03T09:23:08.000000005Z");
  zone("Europe/London");
  EXPECT_EQ(iso8601_local_ns(kDecember3), "2026-12-03T09:23:08.000000000Z");  // GMT
  EXPECT_EQ(iso8601_local_ns(parsed("2026-07-01T11:00:00Z")),
            "2026-07-01T12:00:00.000000000+01:00");
  zone("America/New_York");
  EXPECT_EQ(iso8601_local_ns(kDecember3 + 250'000'000), "2026-12-03T04:23:08.250000000-05:00");
  zone("Asia/Kolkata");
  EXPECT_EQ(iso8601_local_ns(kDecember3), "2026-12-03T14:53:08.000000000+05:30");
  zone("Nowhere/Atlantis");
  EXPECT_EQ(iso8601_local_ns(kDecember3), "2026-12-03T09:23:08.000000000Z");
  // What text output shows parses back to the same instant.
  zone("America/New_York");
  EXPECT_EQ(parsed(iso8601_local_ns(kDecember3 + 7)), kDecember3 + 7);
}

}  // namespace
