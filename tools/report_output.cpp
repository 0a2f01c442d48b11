#include "tools/report_output.hpp"

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "tools/commands.hpp"

namespace shmbus::tools {

std::string_view error_code_name(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::invalid_argument: return "invalid_argument";
    case ErrorCode::not_found: return "not_found";
    case ErrorCode::permission_denied: return "permission_denied";
    case ErrorCode::no_space: return "no_space";
    case ErrorCode::version_mismatch: return "version_mismatch";
    case ErrorCode::corrupt: return "corrupt";
    case ErrorCode::busy: return "busy";
    case ErrorCode::timed_out: return "timed_out";
    case ErrorCode::system: return "system";
  }
  return "system";  // not an enumerator: treated as the catch-all
}

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
