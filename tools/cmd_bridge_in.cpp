// shmbus bridge in --nats URL --stream NAME CHANNEL: a stream's records into a local channel
// (shmbus::bridge::In, include/shmbus/bridge_in.hpp).
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string_view>
#include <thread>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "bridge/nats_handles.hpp"
#include "shmbus/bridge_in.hpp"
#include "tools/bridge_commands.hpp"
#include "tools/commands.hpp"
#include "tools/option_bounds.hpp"
#include "tools/signals.hpp"

namespace shmbus::tools {

int run_bridge_in(const BridgeInOptions& options) {
  std::FILE* err = stderr;
  install_stop_handlers();
  bridge::InOptions in = options.bridge;
  in.report = [err](std::string_view line) {
    fmt::print(err, "shmbus bridge in: {}\n", line);
    std::fflush(err);
  };
  int code = kExitOk;
  {
    auto opened = bridge::In::open(in);
    if (!opened) {
      std::string_view why = opened.error().message;
      if (why.starts_with("bridge in: ")) why.remove_prefix(11);  // the prefix below says it
      fmt::print(err, "shmbus bridge in: {}\n", why);
      code = kExitFailure;
    } else {
      fmt::print(err,
                 "shmbus bridge in: running: stream '{}' from {} into channel '{}' (host {}, "
                 "durable {})\n",
                 in.stream, in.nats_url, in.channel, opened->host(), opened->durable());
      std::fflush(err);
      // SIGINT/SIGTERM only set a flag (tools/signals.hpp); run() watches an atomic.
      std::atomic<bool> stop{false};
      std::jthread watcher([&stop](std::stop_token token) {
        while (!token.stop_requested()) {
          if (stop_requested()) {
            // relaxed: run() polls it; nothing is published through it.
            stop.store(true, std::memory_order_relaxed);
            return;
          }
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
      });
      auto done = opened->run(stop);
      watcher.request_stop();
      if (!done) {
        fmt::print(err, "shmbus bridge in: stopped: {}\n", done.error().message);
        code = kExitFailure;
      } else {
        fmt::print(err, "shmbus bridge in: stopped\n");
      }
    }
  }
  bridge::close_library();  // after every libnats handle is gone: nothing leaks at exit
  return code;
}

void add_bridge_in_command(CLI::App& bridge_app) {
  auto o = std::make_shared<BridgeInOptions>();
  auto ack_wait_ms = std::make_shared<std::int64_t>(30000);
  bridge::InOptions& in = o->bridge;
  CLI::App* cmd = bridge_app.add_subcommand(
      "in", "Publish a JetStream stream's shmbus records into a local channel, each once");
  cmd->add_option("channel", in.channel, "The local channel (created single-producer if missing)")
      ->required();
  cmd->add_option("--nats", in.nats_url, "NATS server URL, e.g. nats://127.0.0.1:4222")
      ->required();
  cmd->add_option("--stream", in.stream, "The JetStream stream bridge out writes")->required();
  cmd->add_option("--subject", in.subject, "Subject to consume (default: the stream's only one)");
  cmd->add_option("--durable", in.durable,
                  "Durable consumer name (default: shmbus-in-<host>-<channel>, dots as _)");
  cmd->add_option("--batch", in.batch, "Messages per fetch; one ack per batch")
      ->transform(whole_number_in(1, 4096))
      ->capture_default_str();
  cmd->add_option("--ack-wait", *ack_wait_ms,
                  "The consumer's AckWait in milliseconds (redelivery of unacknowledged messages)")
      ->check(CLI::Range(std::int64_t{100}, std::int64_t{86'400'000}))
      ->capture_default_str();
  cmd->add_option("--host", in.host,
                  "This host's name, [A-Za-z0-9._-]{1,64}: records that came from it are never "
                  "applied (default: gethostname())");
  cmd->add_option("--capacity", in.capacity, "Creating the channel: ring capacity (e.g. 4MiB)")
      ->transform(ring_capacity_size());
  cmd->add_option("--max-message", in.max_message, "Creating the channel: largest record")
      ->transform(max_message_size());
  cmd->footer(
      "Acknowledges only after the local commit and applies each record once across kill -9 "
      "(the applied position is in the channel's bridge-in object, `shmbus stat`). GAP records "
      "and records the stream lost reach local subscribers as lost_before. SIGINT/SIGTERM stop "
      "it cleanly.\nExit: 0 stopped by a signal; 1 error; 2 bad arguments.");
  cmd->callback([o, ack_wait_ms] {
    o->bridge.ack_wait = std::chrono::milliseconds(*ack_wait_ms);
    const int code = run_bridge_in(*o);
    if (code != kExitOk) throw CLI::RuntimeError(code);
  });
}

}  // namespace shmbus::tools
