// What a bench report says about the run itself, so that a figure read later (or plotted) can be
// traced to the build, the machine and the moment that produced it.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace shmbus::bench {

struct RunMetadata {
  std::string shmbus_version;  // the CMake project version
  std::string git_commit;      // HEAD when the build was configured, "-dirty" if it had changes;
                               // "unknown" outside a git checkout
  std::string cpu_model;       // /proc/cpuinfo's first "model name"; "unknown" if there is none
  unsigned cpus = 0;           // CPUs online
  std::vector<int> cpus_used;  // the CPUs the measured processes were pinned to; empty: not pinned
  std::string kernel;          // uname: sysname, release, version, machine
  std::string date_utc;        // when the run ended, ISO 8601 in UTC: 2026-12-03T21:30:00Z
  int rounds = 0;
  double max_spread = 0;  // the spread between rounds above which a figure raises a warning
};

// The metadata of a run that has just ended on this machine. `cpus_used` drops negative entries
// (not pinned) and repeats.
RunMetadata collect_run_metadata(const std::vector<int>& cpus_used, int rounds,
                                 double max_spread);

// The "model name" of the first processor in /proc/cpuinfo's text; "unknown" if none.
std::string cpu_model_of(const std::string& cpuinfo);

nlohmann::ordered_json to_json(const RunMetadata& metadata);

}  // namespace shmbus::bench
