// Replays every saved fuzz input (fuzz/corpus/<target>/ and fuzz/regressions/<target>/) through the
// fuzz targets' bodies (fuzz/targets/*_target.hpp), so that the inputs which once crashed a target
// keep being run by the normal suite, under g++ and its sanitizer builds, without clang or
// libFuzzer. A target that still crashes on an input crashes (or fails, under ASan+UBSan) here.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "fuzz/targets/channel_files.hpp"
#include "fuzz/targets/cli_target.hpp"
#include "fuzz/targets/control_target.hpp"
#include "fuzz/targets/dead_letter_target.hpp"
#include "fuzz/targets/journal_target.hpp"
#include "fuzz/targets/ring_target.hpp"

namespace {

namespace fs = std::filesystem;

std::vector<fs::path> saved_inputs(const std::string& directory, const std::string& target) {
  std::vector<fs::path> files;
  const fs::path dir = fs::path(SHMBUS_SOURCE_DIR) / "fuzz" / directory / target;
  if (!fs::is_directory(dir)) return files;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.is_regular_file()) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::vector<std::uint8_t> read_input(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Runs every corpus and regression input of `target`; returns how many corpus inputs there were.
template <typename Run>
std::size_t replay(const std::string& target, Run run) {
  const auto corpus = saved_inputs("corpus", target);
  for (const std::string directory : {"corpus", "regressions"}) {
    for (const fs::path& file : saved_inputs(directory, target)) {
      SCOPED_TRACE(file.string());
      const std::vector<std::uint8_t> input = read_input(file);
      EXPECT_EQ(run(shmbus::fuzz::Input(input.data(), input.size())), 0);
    }
  }
  return corpus.size();
}

TEST(FuzzRegressions, RingTargetSurvivesEverySavedInput) {
  EXPECT_GT(replay("ring", shmbus::fuzz::run_ring_input), 0u);
}

TEST(FuzzRegressions, ControlTargetSurvivesEverySavedInput) {
  EXPECT_GT(replay("control", shmbus::fuzz::run_control_input), 0u);
}

TEST(FuzzRegressions, JournalTargetSurvivesEverySavedInput) {
  EXPECT_GT(replay("journal", shmbus::fuzz::run_journal_input), 0u);
}

TEST(FuzzRegressions, DeadLetterTargetSurvivesEverySavedInput) {
  EXPECT_GT(replay("dead_letter", shmbus::fuzz::run_dead_letter_input), 0u);
}

TEST(FuzzRegressions, CliTargetSurvivesEverySavedInput) {
  EXPECT_GT(replay("cli", shmbus::fuzz::run_cli_input), 0u);
}

// The cli target parses a command line and must never run it: `rm` of an existing channel
// object leaves it in place.
TEST(FuzzRegressions, CliTargetParsesWithoutRunningTheCommand) {
  const std::string channel = fmt::format("fuzz-rm-{}", ::getpid());
  const std::string path = shmbus::detail::shm_path(shmbus::detail::ring_object_name(channel));
  const std::uint8_t marker[] = {1, 2, 3};
  ASSERT_TRUE(shmbus::fuzz::write_file(path, shmbus::fuzz::Input(marker, sizeof marker)));
  const std::string line = fmt::format("rm{}{}", std::string_view("\0", 1), channel);
  const auto bytes = std::as_bytes(std::span(line.data(), line.size()));
  EXPECT_EQ(shmbus::fuzz::run_cli_input(shmbus::fuzz::Input(
                reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size())),
            0);
  EXPECT_TRUE(fs::exists(path));
  fs::remove(path);
}

}  // namespace
