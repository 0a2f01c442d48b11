// Running the built `shmbus` command (SHMBUS_CLI, defined for every test program) from a test.
// Header-only: SHMBUS_CLI is a compile definition of the test programs, not of the support library.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "tests/support/command.hpp"

namespace shmbus::test {

// `shmbus ARGS...` to completion, capturing stdout (stderr is the test's).
inline RunResult run_shmbus(const std::vector<std::string>& args,
                            std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  std::vector<std::string> argv{SHMBUS_CLI};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv, timeout);
}

}  // namespace shmbus::test
