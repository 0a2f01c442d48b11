// The --format option of the commands that print records (tail, replay), and --json, its synonym
// for --format json.
#pragma once

#include <string>

#include "tools/format.hpp"

namespace CLI {
class App;
}

namespace shmbus::tools {

// Adds --format text|json|raw|payload, stored in `format` (lowercase), and --json, which stores
// "json". The two exclude each other. `format` must outlive the parse (a subcommand's state).
void add_record_format_option(CLI::App& command, std::string& format);

// The RecordFormat of a --format value add_record_format_option accepted.
RecordFormat record_format_named(const std::string& format);

}  // namespace shmbus::tools
