// shmbus bench: options and entry points (see tools/commands.hpp for the pattern).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace shmbus::tools {

struct BenchOptions {
  std::string kind;  // pingpong | throughput | journal | fanout | group | bridge
  std::size_t size = 64;
  // --size as given: one size, or for bridge a comma-separated list (default 64 and 1024).
  std::vector<std::size_t> sizes;
  std::optional<std::uint64_t> count;
  double duration_s = 2.0;
  int rounds = 3;
  bool json = false;
  // The spread between rounds ((max - min) / median of a figure) above which the run warns.
  double max_spread = 0.25;
  // transports to run (raw-shm, and for throughput raw-seq, always run); empty: all
  std::vector<std::string> only;
  // journal: where the journal and the O_DIRECT baseline file are written, and bytes per round.
  std::string dir = "/var/tmp";
  std::uint64_t bytes = 512ull << 20;
  bool buffered = false;  // journal: the journaler without O_DIRECT
  bool size_given = false;
  // fanout: subscriber counts (1 always runs) and policies; empty: 1, 8, 64, 256 and both.
  std::vector<std::size_t> subscribers;
  std::vector<std::string> policies;
  // bridge: the paced run's records per second, and a NATS server to use instead of starting one.
  double rate = 10'000;
  std::string nats_url;
};

int run_bench(const BenchOptions& options);
void add_bench_command(CLI::App& app);

}  // namespace shmbus::tools
