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
  std::string kind;  // pingpong | throughput
  std::size_t size = 64;
  std::optional<std::uint64_t> count;
  double duration_s = 2.0;
  int rounds = 3;
  bool json = false;
  std::vector<std::string> only;  // transports to run (raw-shm always runs); empty: all
};

int run_bench(const BenchOptions& options);
void add_bench_command(CLI::App& app);

}  // namespace shmbus::tools
