// The floors of the source tree and which may include which. A file may include headers from its
// own floor and the floors below it, never from above:
//
//   core      core/                      the ring over any memory
//   result    include/shmbus/result.hpp  Error and Result, usable by every floor
//   journal_api  include/shmbus/journal_reader.hpp, journal_options.hpp
//                                        the journal's public API           (result)
//   journal   journal/                   the journal's files                (core, result, journal_api)
//   public    include/shmbus/            the installed API                  (core, result, journal_api)
//   ipc       ipc/                       channels, Publisher, Subscriber    (all of the above)
//   capi      capi/                      the C API over the C++ one         (all of the above)
//   bridge    bridge/                    the NATS JetStream bridge          (all of the above but capi)
//   bench     bench/                     harnesses                          (all of the above but capi, bridge)
//   tools     tools/                     the `shmbus` command               (all of the above but capi)
//   tests     tests/, examples/          anything
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace shmbus::layering {

struct Violation {
  std::string file;      // relative to the root
  int line = 0;
  std::string included;  // the header it reaches, relative to the root
  std::string message;   // the whole complaint, ready to print
};

// Reads every C++ source and header under `root` (core, journal, ipc, capi, bridge, include,
// bench, tools) and returns each include that reaches a header of a higher floor. Includes are resolved as the
// compiler does: beside the including file, then from the root, then from root/include; an
// include that resolves to nothing in the tree (a system or third-party header) is not ours.
std::vector<Violation> check_tree(const std::filesystem::path& root);

}  // namespace shmbus::layering
