// Stop requests for the shmbus command. SIGINT and SIGTERM only set a flag; loops check
// stop_requested() and sleep in short slices (about 100 ms) so that they see it, return, and let
// destructors run: a subscriber that returns normally unregisters from the channel.
#pragma once

namespace shmbus::tools {

// Installs the handlers for SIGINT and SIGTERM, without SA_RESTART so that a blocking read (pub
// reading stdin) returns EINTR. Forked children inherit them.
void install_stop_handlers();

// True once SIGINT or SIGTERM arrived in this process.
bool stop_requested() noexcept;

// The signal that asked to stop, or 0.
int stop_signal() noexcept;

}  // namespace shmbus::tools
