// shmbus bridge: the NATS JetStream bridge's parent command (tools/bridge_commands.hpp).
#include <CLI/CLI.hpp>

#include "tools/bridge_commands.hpp"

namespace shmbus::tools {

void add_bridge_command(CLI::App& app) {
  CLI::App* bridge = app.add_subcommand(
      "bridge", "Carry a channel to and from a NATS JetStream stream (docs/bridge-design.md)");
  bridge->require_subcommand(1);
  add_bridge_out_command(*bridge);
  add_bridge_in_command(*bridge);
}

}  // namespace shmbus::tools
