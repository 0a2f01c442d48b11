// The names errors go by outside the process: the ErrorCode enumerator's name ("not_found"), in
// the command's JSON reports and as the Python bindings' shmbus.Error.code, so that a script can
// tell outcomes apart that share an exit code or an exception type.
#pragma once

#include <string_view>

#include "shmbus/result.hpp"

namespace shmbus::tools {

std::string_view error_code_name(ErrorCode code) noexcept;

}  // namespace shmbus::tools
