// shmbus rm: removes one channel's segments, refusing while live processes are attached.
// shmbus gc: removes abandoned channels (no live process attached) and leftover objects.
#include <csignal>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "shmbus/stats.hpp"
#include "tools/commands.hpp"
#include "tools/observe_commands.hpp"
#include "tools/observe_format.hpp"

namespace shmbus::tools {
namespace {

std::string describe(const std::vector<LiveProcess>& live) {
  std::string out;
  for (const LiveProcess& p : live) {
    fmt::format_to(std::back_inserter(out), "{}pid {} ({})", out.empty() ? "" : ", ", p.pid,
                   p.role);
  }
  return out;
}

// Each object's outcome, on stderr: the objects still there are what the user must deal with.
void print_incomplete_removal(const std::string& channel, const RemovalReport& report) {
  std::size_t remaining = 0;
  for (const RemovedObject& object : report.objects) {
    if (object.error) {
      ++remaining;
      fmt::print(stderr, "shmbus rm: {}\n", object.error->message);
    } else {
      fmt::print(stderr, "shmbus rm: removed /dev/shm/{}\n", object.object);
    }
  }
  fmt::print(stderr, "shmbus rm: channel '{}' was not removed: {} of its {} objects remain\n",
             channel, remaining, report.objects.size());
}

}  // namespace

int run_rm(const RmOptions& o, std::FILE* out) {
  std::signal(SIGPIPE, SIG_IGN);
  try {
    std::vector<LiveProcess> live;
    auto stats = read_channel_stats(o.channel);
    if (stats) {
      live = live_processes(*stats);
      // Not abandoned but nobody listed: the single-producer owner between taking the channel
      // and its producer slot.
      const bool in_use = !live.empty() || !stats->abandoned;
      if (in_use && !o.force) {
        fmt::print(stderr,
                   "shmbus rm: channel '{}' is in use by live processes: {}; stop them first, or "
                   "remove it anyway with --force\n",
                   o.channel, live.empty() ? std::string("a producer that is attaching")
                                           : describe(live));
        return kExitFailure;
      }
    } else if (stats.error().code == ErrorCode::version_mismatch ||
               stats.error().code == ErrorCode::corrupt) {
      // Nobody can use such a channel, so nobody's work is cut short by removing it.
      fmt::print(stderr, "shmbus rm: note: {}; the channel cannot be read, removing it anyway\n",
                 stats.error().message);
    } else {
      fmt::print(stderr, "shmbus rm: {}\n", stats.error().message);
      return kExitFailure;
    }
    auto removed = unlink_channel(o.channel);
    if (!removed) {
      fmt::print(stderr, "shmbus rm: {}\n", removed.error().message);
      return kExitFailure;
    }
    if (!removed->complete()) {
      print_incomplete_removal(o.channel, *removed);
      return kExitFailure;
    }
    fmt::print(out, "removed channel {}\n", o.channel);
    if (!live.empty()) {
      fmt::print(stderr,
                 "shmbus rm: note: {} still {} the removed channel and keep{} using it; a new "
                 "channel of that name is a different one\n",
                 describe(live), live.size() == 1 ? "maps" : "map", live.size() == 1 ? "s" : "");
    }
  } catch (const std::exception& e) {  // formatting allocates
    fmt::print(stderr, "shmbus rm: {}\n", e.what());
    return kExitFailure;
  }
  std::fflush(out);
  return kExitOk;
}

int run_gc(const GcOptions& o, std::FILE* out) {
  std::signal(SIGPIPE, SIG_IGN);
  const char* verb = o.dry_run ? "would remove" : "removed";
  std::uint64_t channels = 0, leftovers = 0;
  bool failed = false;
  try {
    for (const std::string& name : list_channels()) {
      auto stats = read_channel_stats(name);
      if (!stats) {
        if (stats.error().code != ErrorCode::not_found) {  // not_found: removed meanwhile
          fmt::print(stderr, "shmbus gc: skipping channel '{}': {} (remove it with 'shmbus rm')\n",
                     name, stats.error().message);
        }
        continue;
      }
      if (!stats->abandoned) continue;
      // Checked again under the ring's exclusive lock, which also sees a process that maps the
      // channel without a slot yet (opening it right now).
      auto removed = remove_channel_if_abandoned(name, o.dry_run);
      if (!removed) {
        if (removed.error().code == ErrorCode::not_found) continue;
        fmt::print(stderr, "shmbus gc: {}\n", removed.error().message);
        failed = true;
        continue;
      }
      if (!*removed) {
        fmt::print(stderr, "shmbus gc: skipping channel '{}': no process is registered, but one "
                           "maps it (opening it right now?)\n", name);
        continue;
      }
      fmt::print(out, "{} channel {}\n", verb, name);
      ++channels;
    }
    // Listed after the channels are gone: removing a channel removes its control segment too.
    for (const ShmLeftover& l : list_leftovers()) {
      if (!o.dry_run) {
        if (auto removed = remove_leftover(l.object); !removed) {
          if (removed.error().code == ErrorCode::not_found) continue;
          fmt::print(stderr, "shmbus gc: {}\n", removed.error().message);
          failed = true;
          continue;
        }
      }
      fmt::print(out, "{} leftover {} ({})\n", verb, l.object, l.why);
      ++leftovers;
    }
    fmt::print(out, "gc: {} channels, {} leftovers {}\n", channels, leftovers,
               o.dry_run ? "would be removed" : "removed");
  } catch (const std::exception& e) {  // formatting and listing allocate
    fmt::print(stderr, "shmbus gc: {}\n", e.what());
    return kExitFailure;
  }
  std::fflush(out);
  return failed ? kExitFailure : kExitOk;
}

void add_rm_command(CLI::App& app) {
  auto o = std::make_shared<RmOptions>();
  CLI::App* sub = app.add_subcommand("rm", "Remove a channel's shared-memory segments");
  sub->add_option("channel", o->channel, "Channel name")->required();
  sub->add_flag("--force", o->force,
                "Remove it even while live processes are attached (they keep their mappings)");
  sub->footer(
      "Refuses while a live process is attached (a producer, subscriber or journaler whose "
      "process runs, or the creator), naming their pids. A channel that cannot be read (another "
      "layout version, corrupt) is removed without --force.\n"
      "An object that cannot be unlinked (another user's, /dev/shm being sticky) is named with "
      "the reason, and so is each one that was.\n"
      "Exit: 0 removed; 1 refused, not (fully) removed, or an error; 2 bad arguments.");
  sub->callback([o] {
    const int code = run_rm(*o, stdout);
    if (code != kExitOk) throw CLI::RuntimeError(code);
  });
}

void add_gc_command(CLI::App& app) {
  auto o = std::make_shared<GcOptions>();
  CLI::App* sub = app.add_subcommand(
      "gc", "Remove abandoned channels (no live process attached) and leftover objects");
  sub->add_flag("--dry-run", o->dry_run, "Only print what would be removed");
  sub->footer(
      "One line per object: 'removed channel NAME' or 'removed leftover OBJECT (WHY)' ('would "
      "remove ...' with --dry-run), then 'gc: N channels, M leftovers removed'. Channels that "
      "cannot be read are skipped with a note on stderr.\n"
      "Exit: 0 done; 1 an object could not be removed; 2 bad arguments.");
  sub->callback([o] {
    const int code = run_gc(*o, stdout);
    if (code != kExitOk) throw CLI::RuntimeError(code);
  });
}

}  // namespace shmbus::tools
