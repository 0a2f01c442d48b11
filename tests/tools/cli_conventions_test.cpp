// The command-line conventions of `shmbus`, checked on the built binary (SHMBUS_CLI): --version
// and `version --json` report the layout versions this build speaks, every outcome has its own exit
// code, the bash completion generated from the option tree completes subcommands, options and
// values, and the man pages generated at build time render.
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <algorithm>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/layout.hpp"
#include "ipc/control_layout.hpp"
#include "journal/format.hpp"
#include "shmbus/shmbus.hpp"
#include "tests/support/command.hpp"
#include "tests/support/process.hpp"
#include "tests/support/shmbus_cli.hpp"
#include "tools/commands.hpp"

namespace {

using namespace std::chrono_literals;
using shmbus::test::ChannelGuard;
using shmbus::test::lines_of;
using shmbus::test::RunResult;
using shmbus::test::run_command;
using shmbus::test::run_shmbus;
using shmbus::test::unique_channel;
using shmbus::test::with_stderr_captured;

// Where the build puts what an install puts under share/: next to bin/, as in an install.
std::filesystem::path build_share() {
  return std::filesystem::path(SHMBUS_CLI).parent_path().parent_path() / "share";
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Shapes checked by hand: std::regex trips GCC 12's -Wmaybe-uninitialized under the sanitizers.
bool all_of_chars(std::string_view text, std::string_view allowed) {
  return !text.empty() && text.find_first_not_of(allowed) == std::string_view::npos;
}
bool is_release_version(std::string_view text) {  // MAJOR.MINOR.PATCH
  int parts = 0;
  for (std::size_t start = 0; start <= text.size(); ++parts) {
    const std::size_t dot = std::min(text.find('.', start), text.size());
    if (!all_of_chars(text.substr(start, dot - start), "0123456789")) return false;
    start = dot + 1;
  }
  return parts == 3;
}
bool is_iso_date(std::string_view text) {  // YYYY-MM-DD
  return text.size() == 10 && text[4] == '-' && text[7] == '-' &&
         all_of_chars(text.substr(0, 4), "0123456789") &&
         all_of_chars(text.substr(5, 2), "0123456789") &&
         all_of_chars(text.substr(8, 2), "0123456789");
}

TEST(CliVersion, VersionFlagAndJsonReportTheSameVersionAndThisBuildsLayouts) {
  const RunResult text = run_shmbus({"--version"});
  ASSERT_TRUE(text.status.ok()) << text.status.describe() << text.out;
  const RunResult r = run_shmbus({"version", "--json"});
  ASSERT_TRUE(r.status.ok()) << r.status.describe() << r.out;
  const auto doc = nlohmann::json::parse(r.out);

  const std::string version = doc.at("version").get<std::string>();
  EXPECT_TRUE(is_release_version(version)) << version;
  EXPECT_EQ(lines_of(text.out).at(0), "shmbus " + version);  // what help2man reads
  EXPECT_EQ(doc.at("ring_layout_version"), shmbus::core::kLayoutVersion);
  EXPECT_EQ(doc.at("control_layout_version"), shmbus::detail::kControlVersion);
  EXPECT_EQ(doc.at("journal_format_version"), shmbus::journal::kFormatVersion);
  EXPECT_EQ(lines_of(text.out).at(1),
            fmt::format("layouts: ring {}, control segment {}, journal format {}",
                        shmbus::core::kLayoutVersion, shmbus::detail::kControlVersion,
                        shmbus::journal::kFormatVersion));

  const std::string commit = doc.at("git_commit").get<std::string>();
  const bool hex_commit =
      commit.size() >= 7 && commit.size() <= 40 && all_of_chars(commit, "0123456789abcdef");
  EXPECT_TRUE(commit == "unknown" || hex_commit) << commit;
  EXPECT_TRUE(is_iso_date(doc.at("build_date").get<std::string>())) << r.out;
  const std::set<std::string> sanitizers{"none", "address", "thread"};
  EXPECT_TRUE(sanitizers.contains(doc.at("sanitizer").get<std::string>())) << r.out;
  EXPECT_FALSE(doc.at("compiler").get<std::string>().empty());
  EXPECT_FALSE(doc.at("build_type").get<std::string>().empty());
  // The plain text says the same things.
  for (const char* field : {"compiler", "build_type", "sanitizer", "git_commit", "build_date"}) {
    EXPECT_NE(text.out.find(doc.at(field).get<std::string>()), std::string::npos)
        << field << " missing from: " << text.out;
  }
}

// --- exit codes ---------------------------------------------------------------------------------

TEST(CliExitCodes, EveryOutcomeHasItsOwnCode) {
  const std::set<int> codes{shmbus::tools::kExitOk, shmbus::tools::kExitFailure,
                            shmbus::tools::kExitUsage, shmbus::tools::kExitTimedOut};
  EXPECT_EQ(codes.size(), 4u);
  EXPECT_EQ(shmbus::tools::kExitOk, 0);
  EXPECT_EQ(shmbus::tools::kExitFailure, 1);
  EXPECT_EQ(shmbus::tools::kExitUsage, 2);
  EXPECT_EQ(shmbus::tools::kExitTimedOut, 3);
}

TEST(CliExitCodes, TailTimingOutExitsThreeAndABadArgumentExitsTwo) {
  ChannelGuard channel(unique_channel("exit-codes"));
  ASSERT_TRUE(run_shmbus({"pub", channel.name(), "--count", "1", "--quiet"}).status.ok());
  // The channel exists but nothing more is published: tail starts at the next message.
  const RunResult timed_out =
      run_command(with_stderr_captured({SHMBUS_CLI, "tail", channel.name(), "--timeout-ms", "200"}),
                  10s);
  EXPECT_TRUE(timed_out.status.exited) << timed_out.status.describe();
  EXPECT_EQ(timed_out.status.code, 3) << timed_out.out;
  EXPECT_NE(timed_out.out.find("no message for 200 ms"), std::string::npos) << timed_out.out;

  const RunResult usage = run_shmbus({"tail", channel.name(), "--timeout-ms", "soon"});
  EXPECT_EQ(usage.status.code, 2) << usage.out;
  const RunResult unknown = run_shmbus({"no-such-subcommand"});
  EXPECT_EQ(unknown.status.code, 2) << unknown.out;
}

// --- bash completion ----------------------------------------------------------------------------

// The script `shmbus completion bash` prints, in a file for bash to source.
class CliCompletion : public ::testing::Test {
 protected:
  void SetUp() override {
    const RunResult r = run_shmbus({"completion", "bash"});
    ASSERT_TRUE(r.status.ok()) << r.status.describe() << r.out;
    script_ = r.out;
    path_ = std::filesystem::temp_directory_path() /
            fmt::format("shmbus-completion-{}.bash", ::getpid());
    std::ofstream(path_) << script_;
  }
  void TearDown() override { std::filesystem::remove(path_); }

  // What _shmbus offers for the command line `words` (the last one being completed), one per
  // element, sorted: COMP_WORDS and COMP_CWORD set as bash sets them before it calls the function.
  std::vector<std::string> complete(std::initializer_list<std::string> words) {
    std::vector<std::string> argv{
        "/bin/bash", "-c",
        "source \"$1\" || exit 9; shift; COMP_WORDS=(\"$@\"); COMP_CWORD=$(($# - 1)); "
        "COMP_LINE=\"$*\"; COMP_POINT=${#COMP_LINE}; _shmbus; "
        "printf '%s\\n' \"${COMPREPLY[@]}\" | sort",
        "bash", path_.string()};
    argv.insert(argv.end(), words);
    const RunResult r = run_command(argv, 10s);
    EXPECT_TRUE(r.status.ok()) << r.status.describe() << r.out;
    std::vector<std::string> offered;
    for (std::string& line : lines_of(r.out)) {
      if (!line.empty()) offered.push_back(std::move(line));
    }
    return offered;
  }

  std::string script_;
  std::filesystem::path path_;
};

TEST_F(CliCompletion, ScriptIsValidBashAndRegistersItsFunction) {
  const RunResult syntax =
      run_command(with_stderr_captured({"/bin/bash", "-n", path_.string()}), 10s);
  EXPECT_TRUE(syntax.status.ok()) << syntax.out;
  const RunResult registered = run_command(
      {"/bin/bash", "-c", "source \"$1\" && complete -p shmbus", "bash", path_.string()}, 10s);
  ASSERT_TRUE(registered.status.ok()) << registered.out;
  EXPECT_NE(registered.out.find("-F _shmbus"), std::string::npos) << registered.out;
}

TEST_F(CliCompletion, CompletesSubcommandsOptionsAndTheirValues) {
  using Words = std::vector<std::string>;
  EXPECT_EQ(complete({"shmbus", "ta"}), Words{"tail"});
  EXPECT_EQ(complete({"shmbus", "tail", "--fo"}), Words{"--format"});
  EXPECT_EQ(complete({"shmbus", "tail", "--format", "j"}), Words{"json"});
  EXPECT_EQ(complete({"shmbus", "tail", "--policy", ""}), (Words{"block", "drop", "spill"}));
  EXPECT_EQ(complete({"shmbus", "--ver"}), Words{"--version"});
  // Nested subcommands: journal's own, then the options of the one chosen.
  EXPECT_EQ(complete({"shmbus", "journal", ""}), (Words{"dump", "info", "verify"}));
  EXPECT_EQ(complete({"shmbus", "journal", "dump", "--fo"}), Words{"--format"});
  // completion's shell is an argument with listed choices (bench's benchmark too, checked in
  // bench_cli_test.cpp: `shmbus bench` is not built everywhere).
  EXPECT_EQ(complete({"shmbus", "completion", ""}), Words{"bash"});
  // The subcommands added with it are in the script too.
  EXPECT_EQ(complete({"shmbus", "rm", "--j"}), Words{"--json"});
}

TEST_F(CliCompletion, CompletesChannelNamesWhereACommandTakesAChannel) {
  ChannelGuard channel(unique_channel("completion"));
  ASSERT_TRUE(run_shmbus({"pub", channel.name(), "--count", "1", "--quiet"}).status.ok());
  const std::vector<std::string> offered = complete({"shmbus", "stat", channel.name()});
  // The control segment (NAME.ctl.<incarnation>) shares the prefix and is left out.
  EXPECT_EQ(offered, std::vector<std::string>{channel.name()});
}

TEST_F(CliCompletion, TheBuildWritesTheSameScriptWhereAnInstallPutsIt) {
  const auto built = build_share() / "bash-completion" / "completions" / "shmbus";
  ASSERT_TRUE(std::filesystem::exists(built)) << built;
  EXPECT_EQ(read_file(built), script_);
}

// --- man pages ----------------------------------------------------------------------------------

TEST(CliManPages, EveryCommandHasAPageThatRendersWithItsSections) {
  const auto dir = build_share() / "man" / "man1";
  if (!std::filesystem::exists(dir / "shmbus.1")) {
    const RunResult which = run_command({"/bin/sh", "-c", "command -v help2man"}, 10s);
    if (!which.status.ok()) GTEST_SKIP() << "help2man is not installed: no man pages were built";
    FAIL() << "help2man is installed but the build wrote no " << (dir / "shmbus.1");
  }
  for (const char* page : {"shmbus", "shmbus-tail", "shmbus-journal-dump"}) {
    SCOPED_TRACE(page);
    const auto path = dir / fmt::format("{}.1", page);
    ASSERT_TRUE(std::filesystem::exists(path));
    const RunResult text = run_command({"/bin/bash", "-c",
                                        "set -o pipefail; MANWIDTH=100 man -l \"$1\" | col -b",
                                        "bash", path.string()},
                                       20s);
    EXPECT_TRUE(text.status.ok()) << text.status.describe() << text.out;
    for (const char* section : {"NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "SEE ALSO"}) {
      EXPECT_NE(text.out.find(fmt::format("\n{}\n", section)), std::string::npos)
          << section << " missing from:\n"
          << text.out;
    }
  }
  EXPECT_TRUE(std::filesystem::exists(dir / "shmbus-rm.1"));
  EXPECT_TRUE(std::filesystem::exists(dir / "shmbus-completion.1"));
  const std::string main_page = read_file(dir / "shmbus.1");
  EXPECT_NE(main_page.find("EXIT STATUS"), std::string::npos);
  EXPECT_NE(main_page.find("shmbus-journal-dump"), std::string::npos);  // in SEE ALSO
  const std::string tail_page = read_file(dir / "shmbus-tail.1");
  EXPECT_NE(tail_page.find("timeout"), std::string::npos);  // its options, from tail --help
}

}  // namespace
