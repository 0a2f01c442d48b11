// `shmbus tail CHANNEL --group NAME`: tail as a member of a consumer group (shmbus/group_consumer.hpp).
// Each record the group hands this member is printed as plain tail prints it (json lines also
// carry "redelivered" and "attempt") and acked once its line is flushed, so a record is acked only
// if it was printed. Records the member holds when it stops (--count reached, --timeout-ms, SIGINT,
// SIGTERM, a closed pipe) are left unacked and the member leaves the group: they go to the other
// members at once. Killed outright, the group takes them back when it finds the process dead.
#pragma once

#include <cstdio>

#include "shmbus/group_consumer.hpp"
#include "tools/commands.hpp"

namespace shmbus::tools {

// The GroupOptions `tail --group` opens the group with (its flags; defaults otherwise).
GroupOptions tail_group_options(const TailOptions& options);

// run_tail's work when options.group is set; the same exit codes.
int run_tail_group(const TailOptions& options, std::FILE* out);

}  // namespace shmbus::tools
