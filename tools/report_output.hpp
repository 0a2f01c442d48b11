// A command's report, printed whole to its output (the text or --json form of version, rm, gc and
// record), and the names its JSON gives errors. A report that could not be written (a full disk,
// a closed pipe) is a failure: a script reading it would otherwise see a success with nothing.
#pragma once

#include <cstdio>
#include <string_view>

#include "tools/error_names.hpp"

namespace shmbus::tools {

// Writes `text` to `out` and flushes it. kExitOk, or kExitFailure after saying on stderr
// "shmbus COMMAND: writing output: REASON".
int print_report(std::string_view command, std::string_view text, std::FILE* out) noexcept;

}  // namespace shmbus::tools
