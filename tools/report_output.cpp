#include "tools/report_output.hpp"

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "tools/commands.hpp"

namespace shmbus::tools {

int print_report(std::string_view command, std::string_view text, std::FILE* out) noexcept {
  errno = 0;
  if (std::fwrite(text.data(), 1, text.size(), out) == text.size() && std::fflush(out) == 0) {
    return kExitOk;
  }
  const int error = errno != 0 ? errno : EIO;
  try {
    fmt::print(stderr, "shmbus {}: writing output: {}\n", command, std::strerror(error));
  } catch (...) {  // formatting allocates; the exit code still says it failed
  }
  return kExitFailure;
}

}  // namespace shmbus::tools
