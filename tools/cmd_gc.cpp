// shmbus rm: removes one channel's segments, refusing while live processes are attached.
// shmbus gc: removes abandoned channels (no live process attached) and leftover objects.
// tools/removal.hpp does the work; this file prints its reports as text or JSON.
#include <csignal>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tools/commands.hpp"
#include "tools/observe_commands.hpp"
#include "tools/removal.hpp"
#include "tools/report_output.hpp"

namespace shmbus::tools {
namespace {

using RemovalJson = nlohmann::ordered_json;

std::string describe(const std::vector<LiveProcess>& live) {
  std::string out;
  for (const LiveProcess& p : live) {
    fmt::format_to(std::back_inserter(out), "{}pid {} ({})", out.empty() ? "" : ", ", p.pid,
                   p.role);
  }
  return out;
}

RemovalJson error_json(const std::optional<Error>& error) {
  if (!error) return nullptr;
  return {{"code", error_code_name(error->code)}, {"message", error->message}};
}

// Each object's outcome, on stderr: the objects still there are what the user must deal with.
void print_incomplete_removal(const RmReport& report) {
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
             report.channel, remaining, report.objects.size());
}

// What went wrong or needs saying, on stderr, in both output forms.
void print_rm_notes(const RmReport& report) {
  if (report.refused) {
    fmt::print(stderr,
               "shmbus rm: channel '{}' is in use by live processes: {}; stop them first, or "
               "remove it anyway with --force\n",
               report.channel,
               report.attaching_producer ? std::string("a producer that is attaching")
                                         : describe(report.live));
    return;
  }
  if (report.unreadable) {
    fmt::print(stderr, "shmbus rm: note: {}; the channel cannot be read, removing it anyway\n",
               *report.unreadable);
  }
  if (report.error) {
    fmt::print(stderr, "shmbus rm: {}\n", report.error->message);
  } else if (!report.removed()) {
    print_incomplete_removal(report);
  } else if (!report.live.empty()) {
    fmt::print(stderr,
               "shmbus rm: note: {} still {} the removed channel and keep{} using it; a new "
               "channel of that name is a different one\n",
               describe(report.live), report.live.size() == 1 ? "maps" : "map",
               report.live.size() == 1 ? "s" : "");
  }
}

std::string rm_json(const RmReport& report) {
  RemovalJson live = RemovalJson::array();
  for (const LiveProcess& p : report.live) live.push_back({{"pid", p.pid}, {"role", p.role}});
  RemovalJson objects = RemovalJson::array();
  for (const RemovedObject& object : report.objects) {
    objects.push_back({{"object", object.object},
                       {"removed", !object.error},
                       {"error", error_json(object.error)}});
  }
  RemovalJson doc;
  doc["channel"] = report.channel;
  doc["removed"] = report.removed();
  doc["refused"] = report.refused;
  doc["live_processes"] = std::move(live);
  doc["attaching_producer"] = report.attaching_producer;
  doc["unreadable"] = report.unreadable ? RemovalJson(*report.unreadable) : RemovalJson(nullptr);
  doc["objects"] = std::move(objects);
  doc["error"] = error_json(report.error);
  return doc.dump();
}

void print_gc_problems(const GcReport& report) {
  for (const GcReport::Problem& problem : report.problems) {
    switch (problem.kind) {
      case GcReport::Problem::Kind::unreadable:
        fmt::print(stderr, "shmbus gc: skipping channel '{}': {} (remove it with 'shmbus rm')\n",
                   problem.name, problem.message);
        break;
      case GcReport::Problem::Kind::opening:
        fmt::print(stderr, "shmbus gc: skipping channel '{}': {}\n", problem.name,
                   problem.message);
        break;
      case GcReport::Problem::Kind::failed:
        fmt::print(stderr, "shmbus gc: {}\n", problem.message);
        break;
    }
  }
}

std::string gc_text(const GcReport& report) {
  const char* verb = report.dry_run ? "would remove" : "removed";
  std::string text;
  auto out = std::back_inserter(text);
  for (const std::string& channel : report.channels) {
    fmt::format_to(out, "{} channel {}\n", verb, channel);
  }
  for (const ShmLeftover& l : report.leftovers) {
    fmt::format_to(out, "{} leftover {} ({})\n", verb, l.object, l.why);
  }
  fmt::format_to(out, "gc: {} channels, {} leftovers {}\n", report.channels.size(),
                 report.leftovers.size(), report.dry_run ? "would be removed" : "removed");
  return text;
}

std::string gc_json(const GcReport& report) {
  RemovalJson leftovers = RemovalJson::array();
  for (const ShmLeftover& l : report.leftovers) {
    leftovers.push_back({{"object", l.object}, {"why", l.why}});
  }
  RemovalJson skipped = RemovalJson::array();
  RemovalJson failures = RemovalJson::array();
  for (const GcReport::Problem& problem : report.problems) {
    if (problem.kind == GcReport::Problem::Kind::failed) {
      failures.push_back({{"name", problem.name}, {"message", problem.message}});
    } else {
      skipped.push_back(
          {{"channel", problem.name},
           {"reason", problem.kind == GcReport::Problem::Kind::unreadable ? "unreadable"
                                                                          : "opening"},
           {"message", problem.message}});
    }
  }
  RemovalJson doc;
  doc["dry_run"] = report.dry_run;
  doc["channels"] = report.channels;
  doc["leftovers"] = std::move(leftovers);
  doc["skipped"] = std::move(skipped);
  doc["failures"] = std::move(failures);
  return doc.dump();
}

}  // namespace

int run_rm(const RmOptions& o, std::FILE* out) {
  std::signal(SIGPIPE, SIG_IGN);
  try {
    const RmReport report = remove_channel_checked(o);
    print_rm_notes(report);
    std::string text;
    if (o.json) {
      text = rm_json(report) + "\n";
    } else if (report.removed()) {
      text = fmt::format("removed channel {}\n", report.channel);
    }
    const int printed = print_report("rm", text, out);
    return report.removed() ? printed : kExitFailure;
  } catch (const std::exception& e) {  // formatting allocates
    fmt::print(stderr, "shmbus rm: {}\n", e.what());
    return kExitFailure;
  }
}

int run_gc(const GcOptions& o, std::FILE* out) {
  std::signal(SIGPIPE, SIG_IGN);
  try {
    const GcReport report = collect_garbage(o);
    print_gc_problems(report);
    const int printed =
        print_report("gc", o.json ? gc_json(report) + "\n" : gc_text(report), out);
    return report.failed() ? kExitFailure : printed;
  } catch (const std::exception& e) {  // formatting and listing allocate
    fmt::print(stderr, "shmbus gc: {}\n", e.what());
    return kExitFailure;
  }
}

void add_rm_command(CLI::App& app) {
  auto o = std::make_shared<RmOptions>();
  CLI::App* sub = app.add_subcommand("rm", "Remove a channel's shared-memory segments");
  sub->add_option("channel", o->channel, "Channel name")->required();
  sub->add_flag("--force", o->force,
                "Remove it even while live processes are attached (they keep their mappings)");
  sub->add_flag("--json", o->json,
                "Print one JSON object on stdout, whatever the outcome: {channel, removed, "
                "refused, live_processes, attaching_producer, unreadable, objects, error}");
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
  sub->add_flag("--json", o->json,
                "Print one JSON object on stdout instead of the lines: {dry_run, channels, "
                "leftovers, skipped, failures}");
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
