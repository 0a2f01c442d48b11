// What `shmbus rm` and `shmbus gc` do, as reports: the work is done here, cmd_gc.cpp prints the
// reports as text or JSON (docs/observability.md lists the JSON fields).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "shmbus/shmbus.hpp"
#include "shmbus/stats.hpp"
#include "tools/observe_commands.hpp"
#include "tools/observe_format.hpp"

namespace shmbus::tools {

struct RmReport {
  std::string channel;
  // The live processes attached when rm looked (with --force, they keep their mappings).
  std::vector<LiveProcess> live;
  // In use without a live process listed: the single-producer owner between taking the channel
  // and its producer slot.
  bool attaching_producer = false;
  bool refused = false;  // in use and no --force: nothing was removed
  // Why the channel could not be read (another layout version, corrupt), when it was removed
  // anyway: nobody can use such a channel, so nobody's work is cut short.
  std::optional<std::string> unreadable;
  std::vector<RemovedObject> objects;  // what unlink_channel did to each object
  std::optional<Error> error;          // it could not be looked at or removed (not_found, ...)

  // Every object of the channel is gone.
  bool removed() const noexcept {
    if (refused || error) return false;
    for (const RemovedObject& object : objects) {
      if (object.error) return false;
    }
    return true;
  }
};

// Removes `options.channel` unless live processes are attached and not `options.force`.
// Never throws except std::bad_alloc.
RmReport remove_channel_checked(const RmOptions& options);

struct GcReport {
  bool dry_run = false;
  std::vector<std::string> channels;     // abandoned channels removed (with dry_run: to remove)
  std::vector<ShmLeftover> leftovers;    // leftover objects removed (with dry_run: to remove)
  // What gc did not remove, in the order it met them.
  struct Problem {
    enum class Kind : std::uint8_t {
      unreadable,  // a channel skipped: it cannot be read (only `shmbus rm` removes it)
      opening,     // a channel skipped: no process is registered, but one maps it
      failed,      // a channel or leftover that could not be removed
    };
    Kind kind;
    std::string name;     // the channel, or the leftover object
    std::string message;  // why
  };
  std::vector<Problem> problems;
  bool failed() const noexcept {
    for (const Problem& problem : problems) {
      if (problem.kind == Problem::Kind::failed) return true;
    }
    return false;
  }
};

// Removes every abandoned channel, then the leftover objects (removing a channel removes its
// control segment too). Channels and leftovers that vanish meanwhile are not mentioned.
GcReport collect_garbage(const GcOptions& options);

}  // namespace shmbus::tools
