// What `shmbus stat` shows of a channel's groups: read from each group object through a
// read-only mapping, every value checked before it is used (a damaged group is reported in its
// `problem`, never trusted).
#include <fmt/format.h>

#include "ipc/channel.hpp"
#include "ipc/group_segment.hpp"
#include "ipc/group_words.hpp"
#include "ipc/process.hpp"

namespace shmbus {

namespace {

using namespace detail;

void read_one(const ShmSegment& segment, const GroupSettings& settings, const core::RingRef& ring,
              GroupStats& out) {
  void* base = segment.base();
  GroupHeader& h = group_header(base);
  const GroupPair cursor = load_cursor(h.dispatch);
  const GroupPair floor = load_cursor(h.floor);
  out.next_sequence = cursor.second;
  out.retired_through = floor.second;
  // relaxed (all): statistics.
  out.acked = h.acked.load(std::memory_order_relaxed);
  out.redelivered = h.redelivered.load(std::memory_order_relaxed);      // relaxed: statistic
  out.dead_lettered = h.dead_lettered.load(std::memory_order_relaxed);  // relaxed: statistic
  out.lost = h.lost.load(std::memory_order_relaxed);                    // relaxed: statistic
  out.fenced = h.fenced.load(std::memory_order_relaxed);                // relaxed: statistic
  // relaxed: the claim word's sequence half, a statistic here.
  const std::uint64_t published = ring.claimed_sequence(std::memory_order_relaxed);
  out.lag = published > cursor.second ? published - cursor.second : 0;
  if (cursor.second < floor.second || cursor.second - floor.second > settings.window) {
    out.problem = fmt::format("cursors out of order: dispatch at {}, floor at {}", cursor.second,
                              floor.second);
    return;
  }
  GroupMember* members = group_members(base);
  GroupEntry* entries = group_entries(base);
  std::vector<std::uint64_t> held_by(kMaxGroupMembers, 0);
  const std::int64_t now = monotonic_ns();
  std::int64_t oldest_deadline = INT64_MAX;
  for (std::uint64_t s = floor.second; s < cursor.second; ++s) {
    GroupEntry& e = entries[s & (settings.window - 1)];
    const GroupPair seen = load_pair_for_tools(e.word);
    if (seen.first != s || !plausible_lease(seen.second)) continue;
    const Lease l = unpack_lease(seen.second);
    if (l.state == EntryState::in_flight || l.state == EntryState::pinned) {
      ++out.in_flight;
      ++held_by[l.member];
      // A statistic: the deadline minus the timeout is when it was handed out (a deadline of
      // another lease, read torn or not yet written, only skews the age; bounded below).
      const GroupPair d = load_pair_for_tools(e.deadline);
      if (d.first == deadline_tag(s, seen.second)) {
        oldest_deadline = std::min(oldest_deadline, static_cast<std::int64_t>(d.second));
      }
    } else if (l.state == EntryState::orphaned) {
      ++out.waiting_redelivery;
    }
  }
  if (oldest_deadline != INT64_MAX) {
    // Deadlines run on the coarse monotonic clock; the age is approximate to a few ms.
    out.oldest_unacked_age_ns = std::max<std::int64_t>(0, now - (oldest_deadline -
                                                                 settings.ack_timeout_ns));
  }
  for (std::uint32_t i = 0; i < kMaxGroupMembers; ++i) {
    GroupMember& m = members[i];
    // acquire: an active member's identity was released with its word.
    const std::uint64_t word = m.word.load(std::memory_order_acquire);
    const MemberState state = member_state(word);
    if (state != MemberState::active && state != MemberState::leaving) continue;
    GroupMemberStats ms;
    ms.index = i;
    ms.pid = m.pid;
    ms.alive = process_alive(ProcessId{m.pid, m.start_time});
    ms.joined_ns = m.joined_ns;
    // relaxed (all): statistics.
    ms.delivered = m.delivered.load(std::memory_order_relaxed);
    ms.acked = m.acked.load(std::memory_order_relaxed);              // relaxed: statistic
    ms.nacked = m.nacked.load(std::memory_order_relaxed);            // relaxed: statistic
    ms.redelivered = m.redelivered.load(std::memory_order_relaxed);  // relaxed: statistic
    ms.fenced = m.fenced.load(std::memory_order_relaxed);            // relaxed: statistic
    ms.in_flight = held_by[i];
    out.members.push_back(ms);
  }
}

}  // namespace

Result<std::vector<GroupStats>> read_group_stats(std::string_view channel) {
  auto mapping = ChannelMapping::open(channel, false, std::chrono::milliseconds(0), false);
  if (!mapping) return tl::unexpected(mapping.error());
  const std::uint64_t incarnation = (*mapping)->info().incarnation;
  std::vector<GroupStats> all;
  for (const std::string& name : list_group_names(channel, incarnation)) {
    GroupStats g;
    g.group = name;
    const std::string object = group_object_name(channel, incarnation, name);
    auto segment = ShmSegment::open(object, false, false);
    if (!segment) {
      if (segment.error().code == ErrorCode::not_found) continue;  // removed meanwhile
      g.problem = segment.error().message;
      all.push_back(std::move(g));
      continue;
    }
    auto settings = validate_group(*segment, incarnation,
                                   fmt::format("group '{}' of channel '{}'", name, channel));
    if (!settings) {
      g.problem = settings.error().message;
      all.push_back(std::move(g));
      continue;
    }
    g.policy = settings->policy;
    g.keyed = settings->keyed;
    g.ack_timeout_ns = settings->ack_timeout_ns;
    g.max_attempts = settings->max_attempts;
    g.window = settings->window;
    g.dead_letter_channel = settings->dead_letter_channel;
    read_one(*segment, *settings, (*mapping)->ring(), g);
    all.push_back(std::move(g));
  }
  return all;
}

}  // namespace shmbus
