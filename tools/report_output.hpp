// A command's report, printed whole to its output (the text or --json form of version, rm, gc and
// record), and the names its JSON gives errors. A report that could not be written (a full disk,
// a closed pipe) is a failure: a script reading it would otherwise see a success with nothing.
#pragma once

#include <cstdio>
#include <string_view>

#include "shmbus/result.hpp"

namespace shmbus::tools {

// The name a JSON report gives an error code: the enumerator's name ("not_found"), so that a
// script can tell outcomes apart that share exit code 1.
std::string_view error_code_name(ErrorCode code) noexcept;

// Writes `text` to `out` and flushes it. kExitOk, or kExitFailure after saying on stderr
// "shmbus COMMAND: writing output: REASON".
int print_report(std::string_view command, std::string_view text, std::FILE* out) noexcept;

}  // namespace shmbus::tools
