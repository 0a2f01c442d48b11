// The NATS JetStream bridge's subcommands of the `shmbus` command, with the conventions of
// tools/commands.hpp (an options struct, run_X returning the exit code and never throwing, errors
// on stderr prefixed "shmbus bridge X: ", add_X_command registering it with CLI11):
//
//   shmbus bridge out CHANNEL --nats URL --stream NAME ...   (tools/cmd_bridge_out.cpp)
//   shmbus bridge in --nats URL --stream NAME CHANNEL ...    (tools/cmd_bridge_in.cpp)
//
// Both run until SIGINT or SIGTERM (exit 0), printing one line on stderr once running.
// Exit codes: 0 stopped cleanly; 1 a runtime error; 2 bad arguments.
#pragma once

#include "shmbus/bridge_in.hpp"
#include "shmbus/bridge_out.hpp"

namespace CLI {
class App;
}

namespace shmbus::tools {

struct BridgeOutOptions {
  bridge::OutOptions bridge;  // every flag of `bridge out` lands here
};
int run_bridge_out(const BridgeOutOptions& options);
// Registers `out` under the `bridge` command.
void add_bridge_out_command(CLI::App& bridge);

struct BridgeInOptions {
  bridge::InOptions bridge;  // every flag of `bridge in` lands here
};
int run_bridge_in(const BridgeInOptions& options);
// Registers `in` under the `bridge` command (tools/cmd_bridge_in.cpp).
void add_bridge_in_command(CLI::App& bridge);

// Registers `shmbus bridge` and its subcommands.
void add_bridge_command(CLI::App& app);

}  // namespace shmbus::tools
