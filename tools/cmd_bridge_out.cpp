// shmbus bridge out: a channel's records, in order, into a JetStream stream (shmbus::bridge::Out,
// include/shmbus/bridge_out.hpp).
#include <atomic>
#include <chrono>
#include <csignal>
#include <memory>
#include <string>
#include <thread>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "tools/bridge_commands.hpp"
#include "tools/commands.hpp"
#include "tools/option_bounds.hpp"
#include "tools/signals.hpp"

namespace shmbus::tools {

int run_bridge_out(const BridgeOutOptions& options) {
  install_stop_handlers();
  std::signal(SIGPIPE, SIG_IGN);  // a closed stderr must not kill the bridge
  int code = kExitOk;
  {
    auto out = bridge::Out::open(options.bridge);
    if (!out) {
      fmt::print(stderr, "shmbus bridge out: {}\n", out.error().message);
      bridge::release_nats();
      return out.error().code == ErrorCode::invalid_argument ? kExitUsage : kExitFailure;
    }
    const bridge::OutOptions& o = options.bridge;
    fmt::print(stderr,
               "shmbus bridge out: running: channel '{}' -> {} stream '{}' (subject '{}'), "
               "window {}, ack timeout {} ms; Ctrl-C stops\n",
               o.channel, o.nats_url, o.stream,
               o.subject.empty() ? "shmbus." + o.channel : o.subject, o.window,
               o.ack_timeout.count());
    // The signal handler only sets a flag (tools/signals.hpp); this thread turns it into the
    // bridge's stop flag, which run() checks between steps.
    std::atomic<bool> stop{false};
    std::atomic<bool> finished{false};
    std::thread watcher([&] {
      // relaxed: flags; nothing else is published through them.
      while (!finished.load(std::memory_order_relaxed)) {
        if (stop_requested()) {
          stop.store(true, std::memory_order_relaxed);  // relaxed: as above
          return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    });
    auto done = out->run(stop);
    finished.store(true, std::memory_order_relaxed);  // relaxed: as above
    watcher.join();
    const bridge::OutStats s = out->stats();
    if (!done) {
      fmt::print(stderr, "shmbus bridge out: {}\n", done.error().message);
      code = kExitFailure;
    } else {
      fmt::print(stderr,
                 "shmbus bridge out: stopped: acknowledged through sequence {} ({} records, {} "
                 "GAP records covering {} sequences, {} resends, {} recoveries)\n",
                 s.acked_through, s.acked, s.gaps, s.gap_sequences, s.resends, s.recoveries);
    }
  }
  bridge::release_nats();  // after the bridge is gone: libnats' threads and globals
  return code;
}

void add_bridge_out_command(CLI::App& bridge_app) {
  struct State {
    BridgeOutOptions options;
    std::string policy = "block";
    std::int64_t ack_timeout_ms = 2000;
    std::int64_t liveness_timeout_ms = 5000;
    bool no_create_stream = false;
  };
  auto s = std::make_shared<State>();
  bridge::OutOptions& o = s->options.bridge;
  CLI::App* cmd = bridge_app.add_subcommand(
      "out", "Publish every record of a channel, in order, to a JetStream stream");
  cmd->add_option("channel", o.channel, "Channel name")->required();
  cmd->add_option("--nats", o.nats_url, "NATS server URL, e.g. nats://127.0.0.1:4222")
      ->required();
  cmd->add_option("--stream", o.stream,
                  "JetStream stream (created if missing; it must hold exactly the subject)")
      ->required();
  cmd->add_option("--subject", o.subject, "Subject of the records (default: shmbus.CHANNEL)");
  cmd->add_option("--name", o.name,
                  "Name of the bridge's subscriber on the channel (default: bridge-out.STREAM)");
  cmd->add_option("--policy", s->policy,
                  "block (the default): the channel's producers wait while the stream is behind "
                  "by a ring; spill: they never wait, the bridge catches up from the journal")
      ->transform(CLI::IsMember({"block", "spill"}, CLI::ignore_case));
  cmd->add_option("--window", o.window,
                  "Published, unacknowledged records at most (default 4096)")
      ->transform(whole_number_in(1, 1 << 20));
  cmd->add_option("--ack-timeout", s->ack_timeout_ms,
                  "A publish unacknowledged after this many ms is resent (default 2000)")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{3'600'000}));
  cmd->add_option("--host", o.host,
                  "Origin host in each record's headers (default: this machine's name); "
                  "[A-Za-z0-9._-], at most 64");
  cmd->add_option("--journal", o.journal_dir,
                  "Journal directory for what the ring lost (default: the channel's journaler's)");
  cmd->add_option("--liveness-timeout", s->liveness_timeout_ms,
                  "A stopped bridge's subscriber is evicted after this many ms (default 5000)")
      ->check(CLI::Range(std::int64_t{1}, kMaxTimeoutMs));
  cmd->add_flag("--no-create-stream", s->no_create_stream,
                "Fail when the stream is missing instead of creating it");
  cmd->add_option("--max-bytes", o.max_bytes,
                  "MaxBytes of the stream when it is created (default -1: unlimited)")
      ->check(CLI::Range(std::int64_t{-1}, std::numeric_limits<std::int64_t>::max()));
  cmd->footer(
      "Each record is one NATS message: its payload, headers with the channel incarnation, "
      "sequence, publish time, origin host and type, and Nats-Msg-Id = "
      "<incarnation>:<sequence>. Every publish expects its predecessor as the stream's last "
      "message, so the stream never holds a hole or a duplicate. On restart the bridge resumes "
      "after the stream's last record, from the ring or the journal; sequences neither holds are "
      "published as one GAP record naming the exact range.\n"
      "Exit: 0 stopped by SIGINT/SIGTERM; 1 a runtime error; 2 bad arguments.");
  cmd->callback([s] {
    bridge::OutOptions& out = s->options.bridge;
    out.policy = s->policy == "spill" ? Policy::spill : Policy::block;
    out.ack_timeout = std::chrono::milliseconds(s->ack_timeout_ms);
    out.liveness_timeout = std::chrono::milliseconds(s->liveness_timeout_ms);
    out.create_stream = !s->no_create_stream;
    const int code = run_bridge_out(s->options);
    if (code != kExitOk) throw CLI::RuntimeError(code);
  });
}

}  // namespace shmbus::tools
