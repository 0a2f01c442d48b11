// `shmbus completion bash`: a bash completion script generated from the command's own CLI11 tree,
// so that every subcommand and option added later is completed without editing a script.
#pragma once

#include <string>

namespace CLI {
class App;
}

namespace shmbus::tools {

// The script for `root` (the top-level app with every subcommand registered). It defines
// _shmbus, the completion function, and registers it for `shmbus` with `complete`. It completes
// subcommand names (nested: `journal dump`), each level's options, the values of options whose
// CLI11 validator lists them (IsMember), channel names from /dev/shm for a CHANNEL argument, and
// file names for any other option value.
std::string bash_completion_script(const CLI::App& root);

}  // namespace shmbus::tools
