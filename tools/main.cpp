// The `shmbus` command: CLI11 parses, each subcommand in cmd_*.cpp does the work.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "tools/bench_command.hpp"
#include "tools/bridge_commands.hpp"
#include "tools/commands.hpp"
#include "tools/dlq_commands.hpp"
#include "tools/record_command.hpp"
#include "tools/journal_commands.hpp"
#include "tools/observe_commands.hpp"

namespace {

// Exit code and message for a command line CLI11 did not accept (or --help).
int on_parse_error(const CLI::App& app, const CLI::ParseError& e) {
  const std::string name = e.get_name();
  if (name == "RuntimeError" || name == "CallForHelp" || name == "CallForAllHelp" ||
      name == "CallForVersion") {
    return app.exit(e);  // a subcommand's exit code, or help printed on stdout (exit 0)
  }
  const auto chosen = app.get_subcommands();
  if (chosen.empty()) {  // no or an unknown subcommand: say so, then show what there is
    const auto extra = app.remaining();
    const std::string what = extra.empty() ? std::string(e.what())
                                           : fmt::format("unknown subcommand '{}'", extra.front());
    fmt::print(stderr, "shmbus: {}\n\n{}", what, app.help());
  } else {
    // The full path of the innermost subcommand chosen ("journal dump"), whose option it was.
    std::string sub = chosen.front()->get_name();
    for (const CLI::App* inner = chosen.front(); !inner->get_subcommands().empty();) {
      inner = inner->get_subcommands().front();
      sub = fmt::format("{} {}", sub, inner->get_name());
    }
    fmt::print(stderr, "shmbus {}: {}\nRun 'shmbus {} --help' for more information.\n", sub,
               e.what(), sub);
  }
  return shmbus::tools::kExitUsage;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"shmbus: a shared-memory message bus for processes on one host", "shmbus"};
  app.require_subcommand(1);

  // The subcommands. Each add_*_command() registers one and runs it when it is chosen.
  shmbus::tools::add_pub_command(app);
  shmbus::tools::add_tail_command(app);
  shmbus::tools::add_demo_command(app);
  shmbus::tools::add_bench_command(app);
  shmbus::tools::add_record_command(app);
  shmbus::tools::add_journal_command(app);
  shmbus::tools::add_replay_command(app);
  shmbus::tools::add_ls_command(app);
  shmbus::tools::add_stat_command(app);
  shmbus::tools::add_inspect_command(app);
  shmbus::tools::add_rm_command(app);
  shmbus::tools::add_gc_command(app);
  shmbus::tools::add_dlq_command(app);
  shmbus::tools::add_bridge_command(app);
  shmbus::tools::add_version_command(app);
  shmbus::tools::add_completion_command(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return on_parse_error(app, e);
  }
  return shmbus::tools::kExitOk;
}
