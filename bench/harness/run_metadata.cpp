#include "bench/harness/run_metadata.hpp"

#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <fstream>
#include <sstream>

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <nlohmann/json.hpp>

// Set by bench/CMakeLists.txt for this file only (so a new commit recompiles nothing else).
#ifndef SHMBUS_BENCH_VERSION
#define SHMBUS_BENCH_VERSION "unknown"
#endif
#ifndef SHMBUS_BENCH_GIT_COMMIT
#define SHMBUS_BENCH_GIT_COMMIT "unknown"
#endif

namespace shmbus::bench {

namespace {

std::string read_file(const char* path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string trimmed(const std::string& text) {
  const auto first = text.find_first_not_of(" \t");
  if (first == std::string::npos) return {};
  return text.substr(first, text.find_last_not_of(" \t\r") - first + 1);
}

std::string kernel_name() {
  utsname names{};
  if (::uname(&names) != 0) return "unknown";
  return fmt::format("{} {} {} {}", names.sysname, names.release, names.version, names.machine);
}

}  // namespace

std::string cpu_model_of(const std::string& cpuinfo) {
  std::istringstream lines(cpuinfo);
  for (std::string line; std::getline(lines, line);) {
    const auto colon = line.find(':');
    if (colon == std::string::npos || trimmed(line.substr(0, colon)) != "model name") continue;
    const std::string model = trimmed(line.substr(colon + 1));
    if (!model.empty()) return model;
  }
  return "unknown";
}

RunMetadata collect_run_metadata(const std::vector<int>& cpus_used, int rounds,
                                 double max_spread) {
  RunMetadata m;
  m.shmbus_version = SHMBUS_BENCH_VERSION;
  m.git_commit = SHMBUS_BENCH_GIT_COMMIT;
  m.cpu_model = cpu_model_of(read_file("/proc/cpuinfo"));
  const long online = ::sysconf(_SC_NPROCESSORS_ONLN);
  m.cpus = online > 0 ? static_cast<unsigned>(online) : 0;
  for (const int cpu : cpus_used) {
    if (cpu >= 0 && std::find(m.cpus_used.begin(), m.cpus_used.end(), cpu) == m.cpus_used.end()) {
      m.cpus_used.push_back(cpu);
    }
  }
  m.kernel = kernel_name();
  m.date_utc = fmt::format("{:%Y-%m-%dT%H:%M:%SZ}", fmt::gmtime(std::time(nullptr)));
  m.rounds = rounds;
  m.max_spread = max_spread;
  return m;
}

nlohmann::ordered_json to_json(const RunMetadata& m) {
  return {{"shmbus_version", m.shmbus_version}, {"git_commit", m.git_commit},
          {"cpu_model", m.cpu_model},           {"cpus", m.cpus},
          {"cpus_used", m.cpus_used},           {"kernel", m.kernel},
          {"date_utc", m.date_utc},             {"rounds", m.rounds},
          {"max_spread", m.max_spread}};
}

}  // namespace shmbus::bench
