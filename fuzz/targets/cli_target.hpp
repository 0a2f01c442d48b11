// Fuzz target "cli": the input is a command line, its arguments separated by NUL bytes ("shmbus"
// is put before them). Covers the `shmbus` command's parsing: CLI11 over every subcommand, option,
// range check and transform that tools/ registers (add_*_command), stopped before any subcommand
// runs, so that a command line is parsed and never executed; then the parsing and
// formatting helpers of tools/ over each argument: parse_time_ns (the journal commands' --from-time
// and --to-time), the time, size and rate formatters, payload previews, label escaping and
// `shmbus dlq`'s quoting.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "fuzz/targets/fuzz_support.hpp"
#include "tools/bench_command.hpp"
#include "tools/commands.hpp"
#include "tools/dlq_commands.hpp"
#include "tools/dlq_format.hpp"
#include "tools/format.hpp"
#include "tools/journal_commands.hpp"
#include "tools/observe_commands.hpp"
#include "tools/observe_format.hpp"
#include "tools/record_command.hpp"

namespace shmbus::fuzz {
namespace cli_target {

// Thrown where CLI11 would start running the chosen subcommand.
struct ParsedWithoutRunning {};

// The command's CLI11 application as tools/main.cpp builds it. Its subcommands' callbacks stay
// (they own the options their flags write to) but never run: CLI11 calls the top-level
// parse-complete callback after every option is parsed and checked and before any subcommand's
// callback, and that callback leaves parse() by throwing.
inline void build_app(CLI::App& app) {
  app.require_subcommand(1);
  tools::add_pub_command(app);
  tools::add_tail_command(app);
#ifndef SHMBUS_WITHOUT_BENCH  // the libFuzzer build and SHMBUS_BENCH=OFF leave out `shmbus bench`
                              // and `demo`, which drive the bench/ harness (fuzz/CMakeLists.txt,
                              // tools/CMakeLists.txt)
  tools::add_demo_command(app);
  tools::add_bench_command(app);
#endif
  tools::add_record_command(app);
  tools::add_journal_command(app);
  tools::add_replay_command(app);
  tools::add_ls_command(app);
  tools::add_stat_command(app);
  tools::add_inspect_command(app);
  tools::add_rm_command(app);
  tools::add_gc_command(app);
  tools::add_dlq_command(app);
  app.parse_complete_callback([] { throw ParsedWithoutRunning{}; });
}

inline std::vector<std::string> split_arguments(Input input) {
  std::vector<std::string> arguments{"shmbus"};
  std::string current;
  for (const std::uint8_t byte : input) {
    if (byte == 0) {
      arguments.push_back(std::move(current));
      current.clear();
    } else {
      current.push_back(static_cast<char>(byte));
    }
  }
  arguments.push_back(std::move(current));
  return arguments;
}

inline void format_helpers(const std::string& argument) {
  const auto bytes = std::as_bytes(std::span<const char>(argument.data(), argument.size()));
  if (const auto time = tools::parse_time_ns(argument)) {
    consume(tools::iso8601_utc_ns(*time));
    consume(tools::human_duration_ns(*time));
    consume(tools::human_age(0, *time));
  }
  double value = 0;
  std::memcpy(&value, argument.data(), std::min(sizeof value, argument.size()));
  consume(tools::human_bytes(value));
  consume(tools::human_count(value));
  consume(tools::human_rate(value));
  consume(tools::payload_preview(bytes));
  consume(tools::escape_label_value(argument));
  consume(tools::quoted(argument));
  const Message message{1, 0, bytes, 0};
  consume(tools::record_line(message, tools::RecordFormat::text));
  consume(tools::record_line(message, tools::RecordFormat::json));
}

}  // namespace cli_target

inline int run_cli_input(Input input) {
  using namespace cli_target;
  std::vector<std::string> arguments = split_arguments(input);
  if (arguments.size() > 64) return 0;  // a command line, not a file
  std::vector<char*> argv;
  for (std::string& argument : arguments) argv.push_back(argument.data());
  CLI::App app{"shmbus: a shared-memory message bus for processes on one host", "shmbus"};
  build_app(app);
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::ParseError& e) {
    consume(std::string_view(e.what()));
  } catch (const ParsedWithoutRunning&) {
  }
  for (const std::string& argument : arguments) format_helpers(argument);
  return 0;
}

}  // namespace shmbus::fuzz
