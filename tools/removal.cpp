#include "tools/removal.hpp"

#include <utility>

#include <fmt/format.h>

namespace shmbus::tools {

RmReport remove_channel_checked(const RmOptions& o) {
  RmReport report;
  report.channel = o.channel;
  auto stats = read_channel_stats(o.channel);
  if (stats) {
    report.live = live_processes(*stats);
    report.attaching_producer = report.live.empty() && !stats->abandoned;
    const bool in_use = !report.live.empty() || report.attaching_producer;
    if (in_use && !o.force) {
      report.refused = true;
      return report;
    }
  } else if (stats.error().code == ErrorCode::version_mismatch ||
             stats.error().code == ErrorCode::corrupt) {
    report.unreadable = stats.error().message;
  } else {
    report.error = std::move(stats.error());
    return report;
  }
  auto removed = unlink_channel(o.channel);
  if (!removed) {
    report.error = std::move(removed.error());
    return report;
  }
  report.objects = std::move(removed->objects);
  return report;
}

GcReport collect_garbage(const GcOptions& o) {
  GcReport report;
  report.dry_run = o.dry_run;
  for (const std::string& name : list_channels()) {
    auto stats = read_channel_stats(name);
    if (!stats) {
      if (stats.error().code != ErrorCode::not_found) {  // not_found: removed meanwhile
        report.problems.push_back(
            {GcReport::Problem::Kind::unreadable, name, stats.error().message});
      }
      continue;
    }
    if (!stats->abandoned) continue;
    // Checked again under the ring's exclusive lock, which also sees a process that maps the
    // channel without a slot yet (opening it right now).
    auto removed = remove_channel_if_abandoned(name, o.dry_run);
    if (!removed) {
      if (removed.error().code != ErrorCode::not_found) {
        report.problems.push_back(
            {GcReport::Problem::Kind::failed, name, removed.error().message});
      }
      continue;
    }
    if (!*removed) {
      report.problems.push_back({GcReport::Problem::Kind::opening, name,
                                 "no process is registered, but one maps it (opening it right "
                                 "now?)"});
      continue;
    }
    report.channels.push_back(name);
  }
  // Listed after the channels are gone: removing a channel removes its control segment too.
  for (ShmLeftover& leftover : list_leftovers()) {
    if (!o.dry_run) {
      if (auto removed = remove_leftover(leftover.object); !removed) {
        if (removed.error().code != ErrorCode::not_found) {
          report.problems.push_back(
              {GcReport::Problem::Kind::failed, leftover.object, removed.error().message});
        }
        continue;
      }
    }
    report.leftovers.push_back(std::move(leftover));
  }
  return report;
}

}  // namespace shmbus::tools
