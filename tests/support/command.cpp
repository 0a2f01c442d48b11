#include "tests/support/command.hpp"

#include <gtest/gtest.h>

#include <sstream>

namespace shmbus::test {

RunResult run_command(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
  Child child = Child::spawn(argv);
  const auto status = child.wait(timeout);
  if (!status) {
    std::string command;
    for (const std::string& a : argv) command += a + " ";
    ADD_FAILURE() << "timed out after " << timeout.count() << " ms: " << command << "\n"
                  << "output so far:\n"
                  << child.output();
    child.kill_hard();
    return {ExitStatus{}, child.output()};
  }
  return {*status, child.output()};
}

std::vector<std::string> with_stderr_captured(const std::vector<std::string>& argv) {
  std::vector<std::string> out{"/bin/sh", "-c", "exec \"$0\" \"$@\" 2>&1 >/dev/null"};
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

}  // namespace shmbus::test
