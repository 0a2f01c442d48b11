// Running a program to completion from a test (the `shmbus` command, mostly): its exit status and
// what it wrote to stdout, with a timeout that fails the test rather than hanging it.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "tests/support/process.hpp"

namespace shmbus::test {

struct RunResult {
  ExitStatus status;
  std::string out;  // whatever the child wrote to stdout
};

// Runs argv[0] with arguments argv[1..]. After `timeout` the child is killed, the test fails
// (ADD_FAILURE, with the output so far) and the result has a default (not ok) status.
RunResult run_command(const std::vector<std::string>& argv,
                      std::chrono::milliseconds timeout = std::chrono::seconds(20));

// The same command line with its stderr captured instead of its stdout (stdout is discarded).
std::vector<std::string> with_stderr_captured(const std::vector<std::string>& argv);

// The lines of `text`, without their newlines.
std::vector<std::string> lines_of(const std::string& text);

}  // namespace shmbus::test
