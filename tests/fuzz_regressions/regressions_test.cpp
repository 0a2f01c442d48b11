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

#include "fuzz/targets/cli_target.hpp"
#include "fuzz/targets/control_target.hpp"
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

TEST(FuzzRegressions, CliTargetSurvivesEverySavedInput) {
  EXPECT_GT(replay("cli", shmbus::fuzz::run_cli_input), 0u);
}

}  // namespace
