// Every numeric option of the `shmbus` command has bounds: a value outside them, a negative count
// (which CLI11 would read into an unsigned as 2^64-1) or NaN is refused before anything runs, with
// exit code 2 and "shmbus CMD: --OPTION: expected ..., got 'VALUE'" on stderr. The help states
// each range. Checked on the built binary (SHMBUS_CLI), and on the validators themselves.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "shmbus/shmbus.hpp"
#include "tests/support/command.hpp"
#include "tests/support/journal_files.hpp"
#include "tests/support/process.hpp"
#include "tools/option_bounds.hpp"

namespace {

using namespace std::chrono_literals;
using shmbus::test::ChannelGuard;
using shmbus::test::Child;
using shmbus::test::RunResult;
using shmbus::test::run_command;
using shmbus::test::TempDir;
using shmbus::test::unique_channel;
using shmbus::test::with_stderr_captured;

struct Refusal {
  std::vector<std::string> args;  // after `shmbus`
  std::string command;            // as the error names it: "pub", "journal dump"
  std::string option;             // "--count"
  std::string value;              // as given
};

// Runs `shmbus ARGS...` (stderr captured) and expects the refusal of `r.option`. A command that
// instead runs (forever, for a count of 2^64-1) fails the test by its timeout.
void expect_refused(const Refusal& r, const std::string& expected_phrase) {
#ifdef SHMBUS_WITHOUT_BENCH
  // A command built without `bench` and `demo` (the sanitizer builds of the test command,
  // tools/CMakeLists.txt): their rows are checked by the Release build, which runs this program too.
  if (r.command == "bench" || r.command == "demo") return;
#endif
  std::vector<std::string> argv{SHMBUS_CLI};
  argv.insert(argv.end(), r.args.begin(), r.args.end());
  const RunResult run = run_command(with_stderr_captured(argv), 5s);
  SCOPED_TRACE(run.out);
  EXPECT_TRUE(run.status.exited) << run.status.describe();
  EXPECT_EQ(run.status.code, 2);
  const std::string prefix = "shmbus " + r.command + ": " + r.option + ": " + expected_phrase;
  EXPECT_EQ(run.out.rfind(prefix, 0), 0u) << "expected to start with: " << prefix;
  EXPECT_NE(run.out.find("got '" + r.value + "'"), std::string::npos);
}

class CliBounds : public ::testing::Test {
 protected:
  ChannelGuard channel_{unique_channel("bounds")};
  TempDir dir_{"bounds"};
  const std::string& ch() const { return channel_.name(); }
};

TEST_F(CliBounds, NegativeCountsAndSequencesAreRefusedInsteadOfReadAsTwoToTheSixtyFour) {
  const std::string d = dir_.path();
  const std::vector<Refusal> cases = {
      {{"pub", ch(), "--count", "-1", "-q"}, "pub", "--count", "-1"},
      {{"tail", ch(), "--count", "-1"}, "tail", "--count", "-1"},
      {{"journal", "dump", "--dir", d, "--count", "-1"}, "journal dump", "--count", "-1"},
      {{"journal", "dump", "--dir", d, "--from", "-1"}, "journal dump", "--from", "-1"},
      {{"replay", "--dir", d, "--from", "-1"}, "replay", "--from", "-1"},
      {{"replay", "--dir", d, "--to", "-3"}, "replay", "--to", "-3"},
      {{"demo", "--messages", "-1"}, "demo", "--messages", "-1"},
      {{"bench", "pingpong", "--count", "-1"}, "bench", "--count", "-1"},
      {{"bench", "fanout", "--subscribers", "1,-8"}, "bench", "--subscribers", "-8"},
      {{"bench", "pingpong", "--rounds", "-2"}, "bench", "--rounds", "-2"},
      {{"inspect", ch(), "--records", "-1"}, "inspect", "--records", "-1"},
      {{"record", ch(), "--dir", d, "--buffers", "-1"}, "record", "--buffers", "-1"},
      {{"pub", ch(), "--count", "0"}, "pub", "--count", "0"},
  };
  for (const Refusal& r : cases) {
    SCOPED_TRACE(r.command + " " + r.option + " " + r.value);
    expect_refused(r, "expected a whole number from ");
  }
}

TEST_F(CliBounds, SizesOutsideTheirBoundsAreRefusedWithTheBounds) {
  const std::string d = dir_.path();
  const std::vector<Refusal> cases = {
      {{"record", ch(), "--dir", d, "--segment-size", "-1"}, "record", "--segment-size", "-1"},
      {{"record", ch(), "--dir", d, "--segment-size", "4611686018427387904"},
       "record",
       "--segment-size",
       "4611686018427387904"},
      {{"record", ch(), "--dir", d, "--segment-size", "1KiB"}, "record", "--segment-size", "1KiB"},
      {{"record", ch(), "--dir", d, "--buffer-size", "-1"}, "record", "--buffer-size", "-1"},
      {{"record", ch(), "--dir", d, "--retain-bytes", "-1"}, "record", "--retain-bytes", "-1"},
      {{"pub", ch(), "--count", "1", "--size", "7"}, "pub", "--size", "7"},
      {{"pub", ch(), "--count", "1", "--capacity", "-1"}, "pub", "--capacity", "-1"},
      {{"pub", ch(), "--count", "1", "--capacity", "2TiB"}, "pub", "--capacity", "2TiB"},
      {{"pub", ch(), "--count", "1", "--max-message", "-1"}, "pub", "--max-message", "-1"},
      {{"pub", ch(), "--count", "1", "--size", "1XB"}, "pub", "--size", "1XB"},
      {{"replay", "--dir", d, "--to-channel", ch(), "--capacity", "-1"},
       "replay",
       "--capacity",
       "-1"},
      {{"bench", "journal", "--bytes", "-1"}, "bench", "--bytes", "-1"},
      {{"bench", "pingpong", "--size", "-1"}, "bench", "--size", "-1"},
  };
  for (const Refusal& r : cases) {
    SCOPED_TRACE(r.command + " " + r.option + " " + r.value);
    expect_refused(r, "expected a size from ");
  }
}

TEST_F(CliBounds, NotANumberIsRefusedForRealOptions) {
  const std::vector<Refusal> cases = {
      {{"pub", ch(), "--count", "1", "--rate", "nan"}, "pub", "--rate", "nan"},
      {{"stat", ch(), "--watch", "nan"}, "stat", "--watch", "nan"},
      {{"record", ch(), "--dir", dir_.path(), "--status-interval", "nan"},
       "record",
       "--status-interval",
       "nan"},
      {{"bench", "throughput", "--duration", "-1"}, "bench", "--duration", "-1"},
      {{"demo", "--rate", "nan"}, "demo", "--rate", "nan"},
  };
  for (const Refusal& r : cases) {
    SCOPED_TRACE(r.command + " " + r.option + " " + r.value);
    expect_refused(r, "expected a number from ");
  }
}

// 256 buffers of 256 MiB (64 GiB) used to get as far as the journal writer, whose failed
// allocation then crashed in its destructor.
TEST_F(CliBounds, RecordRefusesAWriteBufferPoolAboveFourGiB) {
  (void)shmbus::Publisher::open(ch(), shmbus::ChannelOptions{});  // so record would start
  const RunResult run = run_command(
      with_stderr_captured({SHMBUS_CLI, "record", ch(), "--dir", dir_.path(), "--buffers", "256",
                            "--buffer-size", "256MiB"}),
      5s);
  EXPECT_TRUE(run.status.exited) << run.status.describe();
  EXPECT_EQ(run.status.code, 2);
  EXPECT_EQ(run.out.rfind("shmbus record: --buffers x --buffer-size: 256 buffers of 268435456 "
                          "bytes are 68719476736 bytes of write buffers; at most 4 GiB",
                          0),
            0u)
      << run.out;
}

// Within the bounds but more than the machine gives: the pool's allocation fails (here under a
// 1 GiB address-space cap), and record says so and exits 1. It used to crash (SIGSEGV) in the
// destructor of the half-opened journal writer.
TEST_F(CliBounds, RecordWhoseBufferPoolCannotBeAllocatedExitsOneSayingSo) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "AddressSanitizer reserves terabytes of address space: RLIMIT_AS cannot apply";
#endif
  Child creator = Child::fork([&] { return shmbus::Publisher::open(ch()) ? 0 : 1; });
  ASSERT_TRUE(creator.wait(10s).value_or(shmbus::test::ExitStatus{}).ok());
  const RunResult run = run_command(
      with_stderr_captured({"/usr/bin/prlimit", "--as=1073741824", SHMBUS_CLI, "record", ch(),
                            "--dir", dir_.path(), "--buffers", "16", "--buffer-size", "256MiB"}),
      10s);
  EXPECT_TRUE(run.status.exited) << run.status.describe();
  EXPECT_EQ(run.status.code, 1);
  EXPECT_NE(run.out.find("shmbus record: journal " + dir_.path() +
                         ": cannot allocate 16 write buffers of 268435456 bytes"),
            std::string::npos)
      << run.out;
}

TEST_F(CliBounds, HelpStatesTheRangeOfEachBoundedOption) {
  const RunResult record = run_command({SHMBUS_CLI, "record", "--help"}, 5s);
  ASSERT_TRUE(record.status.ok()) << record.status.describe();
  for (const char* text : {"--segment-size UINT:SIZE in [64KiB - 16GiB]",
                           "--buffers UINT:N in [2 - 256]",
                           "--buffer-size UINT:SIZE in [64KiB - 256MiB]",
                           "--buffers x --buffer-size is at most 4 GiB"}) {
    EXPECT_NE(record.out.find(text), std::string::npos) << text << "\n" << record.out;
  }
  const RunResult pub = run_command({SHMBUS_CLI, "pub", "--help"}, 5s);
  ASSERT_TRUE(pub.status.ok()) << pub.status.describe();
  for (const char* text : {"--count UINT:N in [1 - 18446744073709551615]",
                           "--capacity UINT:SIZE in [4KiB - 1TiB]"}) {
    EXPECT_NE(pub.out.find(text), std::string::npos) << text << "\n" << pub.out;
  }
}

// The bounded options still take what they always took: units, and values at the bounds.
TEST_F(CliBounds, SizesWithUnitsStillCreateTheChannelTheyDescribe) {
  const RunResult run = run_command({SHMBUS_CLI, "pub", ch(), "--count", "3", "--size", "1KiB",
                                     "--capacity", "64KiB", "--max-message", "2KiB", "-q"},
                                    10s);
  ASSERT_TRUE(run.status.ok()) << run.status.describe();
  auto pub = shmbus::Publisher::open(ch());
  ASSERT_TRUE(pub) << pub.error().message;
  EXPECT_EQ(pub->info().capacity, 65536u);
  EXPECT_EQ(pub->info().max_message, 2048u);
}

// --- the validators ------------------------------------------------------------------------------

std::string validate(const CLI::Validator& v, std::string value) {
  const std::string error = v(value);
  return error.empty() ? value : "error: " + error;
}

TEST(OptionBounds, WholeNumbersAreReadAsDecimalAndRefusedWithASign) {
  const CLI::Validator v = shmbus::tools::whole_number_in(1, 100);
  EXPECT_EQ(validate(v, "1"), "1");
  EXPECT_EQ(validate(v, "100"), "100");
  EXPECT_EQ(validate(v, "010"), "10") << "decimal, not octal";
  EXPECT_EQ(validate(v, "0"), "error: expected a whole number from 1 to 100, got '0'");
  EXPECT_EQ(validate(v, "101"), "error: expected a whole number from 1 to 100, got '101'");
  EXPECT_EQ(validate(v, "-1"), "error: expected a whole number from 1 to 100, got '-1'");
  EXPECT_EQ(validate(v, " -1"), "error: expected a whole number from 1 to 100, got ' -1'");
  EXPECT_EQ(validate(v, "0x10"), "error: expected a whole number from 1 to 100, got '0x10'");
  EXPECT_EQ(validate(v, "99999999999999999999999"),
            "error: expected a whole number from 1 to 100, got '99999999999999999999999'");
}

TEST(OptionBounds, SizesTakeUnitsAndBecomeBytes) {
  const CLI::Validator v = shmbus::tools::byte_size_in(64 << 10, 16ull << 30);
  EXPECT_EQ(validate(v, "64KiB"), "65536");
  EXPECT_EQ(validate(v, "256MiB"), "268435456");
  EXPECT_EQ(validate(v, "16GiB"), "17179869184");
  EXPECT_EQ(validate(v, "65536"), "65536");
  const std::string refused =
      "error: expected a size from 64KiB to 16GiB (bytes, or with a unit: KiB, MiB, GiB), got ";
  EXPECT_EQ(validate(v, "-1"), refused + "'-1'");
  EXPECT_EQ(validate(v, "-1KiB"), refused + "'-1KiB'");
  EXPECT_EQ(validate(v, "17GiB"), refused + "'17GiB'");
  EXPECT_EQ(validate(v, "20EiB"), refused + "'20EiB'") << "more than 2^64 bytes";
  EXPECT_EQ(validate(v, "1 parsec"), refused + "'1 parsec'");
}

TEST(OptionBounds, RealNumbersRefuseNotANumberAndInfinity) {
  const CLI::Validator v = shmbus::tools::real_number_in(0.0, 10.0);
  EXPECT_EQ(validate(v, "2.5"), "2.5");
  EXPECT_EQ(validate(v, "nan"), "error: expected a number from 0 to 10, got 'nan'");
  EXPECT_EQ(validate(v, "inf"), "error: expected a number from 0 to 10, got 'inf'");
  EXPECT_EQ(validate(v, "-0.5"), "error: expected a number from 0 to 10, got '-0.5'");
  EXPECT_EQ(validate(v, "2x"), "error: expected a number from 0 to 10, got '2x'");
}

}  // namespace
