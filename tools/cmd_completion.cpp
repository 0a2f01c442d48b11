// shmbus completion bash: prints the completion script (tools/bash_completion.hpp).
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "tools/bash_completion.hpp"
#include "tools/commands.hpp"
#include "tools/report_output.hpp"

namespace shmbus::tools {

void add_completion_command(CLI::App& app) {
  auto shell = std::make_shared<std::string>();
  CLI::App* sub = app.add_subcommand("completion", "Print a shell completion script");
  sub->add_option("shell", *shell, "The shell (only bash so far)")
      ->required()
      ->check(CLI::IsMember({"bash"}));
  sub->footer(
      "Try it with: source <(shmbus completion bash). Installed, it lives in "
      "share/bash-completion/completions/shmbus, where bash-completion finds it.\n"
      "Exit: 0 printed; 1 output could not be written; 2 bad arguments.");
  // The script describes the whole tree, so it is generated from the top-level app when the
  // subcommand runs: by then every subcommand is registered.
  // The callback owns `shell`, which CLI11 writes through the reference taken above.
  const CLI::App* root = &app;
  sub->callback([root, shell] {
    const int code = print_report("completion", bash_completion_script(*root), stdout);
    if (code != kExitOk) throw CLI::RuntimeError(code);
  });
}

}  // namespace shmbus::tools
