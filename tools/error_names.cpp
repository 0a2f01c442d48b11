#include "tools/error_names.hpp"

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

}  // namespace shmbus::tools
