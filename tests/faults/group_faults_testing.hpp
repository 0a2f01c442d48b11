// What the multi-process consumer-group tests share: starting group members (the peer program's
// group-member role, tests/peer/group_member.hpp) and a producer, reading the group's statistics,
// and judging the members' work logs (tests/support/group_log.hpp) against the group's promises.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "shmbus/group_consumer.hpp"
#include "tests/faults/faults_testing.hpp"
#include "tests/support/group_log.hpp"

namespace shmbus::test::faults {

// Payloads of 12 to 64 bytes, each naming its producer and counter (record s carries counter
// s - 1 of producer 1: one producer publishes into a new channel).
inline constexpr SizeRule kGroupRule{11, static_cast<std::uint32_t>(kPayloadIdBytes), 64};
inline constexpr std::uint32_t kGroupProducer = 1;
inline constexpr const char* kGroupName = "workers";

struct MemberSettings {
  std::uint64_t ack_timeout_ms = 2000;
  std::uint32_t max_attempts = 5;
  std::uint64_t until_retired = 0;
  std::uint64_t run_ms = 0;
  std::uint64_t fail_seq = 0;
  std::uint64_t stop_after = 0;
  std::size_t batch = 64;
  std::uint64_t work_ns = 0;
};

inline std::vector<std::string> member_args(const std::string& channel, const std::string& log,
                                            const MemberSettings& m) {
  std::vector<std::string> a{"group-member",
                             "--channel",
                             channel,
                             "--group",
                             kGroupName,
                             "--log",
                             log,
                             "--ack-timeout-ms",
                             str(m.ack_timeout_ms),
                             "--max-attempts",
                             str(m.max_attempts),
                             "--producer-id",
                             str(kGroupProducer),
                             "--batch",
                             str(m.batch),
                             "--idle-timeout-ms",
                             "60000"};
  if (m.until_retired != 0) a = a + std::vector<std::string>{"--until-retired", str(m.until_retired)};
  if (m.run_ms != 0) a = a + std::vector<std::string>{"--run-ms", str(m.run_ms)};
  if (m.fail_seq != 0) {
    a = a + std::vector<std::string>{"--fail-seq", str(m.fail_seq), "--fail-reason",
                                     "always-fails-" + str(m.fail_seq)};
  }
  if (m.stop_after != 0) a = a + std::vector<std::string>{"--stop-after", str(m.stop_after)};
  if (m.work_ns != 0) a = a + std::vector<std::string>{"--work-ns", str(m.work_ns)};
  return a + rule_args(kGroupRule);
}

// The producer peer: `count` records of kGroupRule, each publish waiting up to `timeout_ms`.
inline Child start_group_producer(const std::string& channel, std::uint64_t count,
                                  std::uint64_t timeout_ms = 60000, double rate = 0) {
  std::vector<std::string> a{"produce",      "--channel", channel,        "--producer-id",
                             str(kGroupProducer), "--count",   str(count), "--timeout-ms",
                             str(timeout_ms)};
  if (rate > 0) a = a + std::vector<std::string>{"--rate", std::to_string(rate)};
  return start_peer(a + rule_args(kGroupRule));
}

// The statistics of our group, if the channel lists it.
inline std::optional<GroupStats> group_stats(const std::string& channel) {
  auto all = read_group_stats(channel);
  if (!all) return std::nullopt;
  for (GroupStats& g : *all) {
    if (g.group == kGroupName) return std::move(g);
  }
  return std::nullopt;
}

inline std::uint64_t retired_through(const std::string& channel) {
  auto g = group_stats(channel);
  return g ? g->retired_through : 0;
}

// The checksum of the payload record `sequence` carries.
inline std::uint64_t expected_checksum(std::uint64_t sequence) {
  const PayloadId id{kGroupProducer, sequence - 1};
  std::vector<std::byte> p(payload_length(kGroupRule, id));
  fill_payload(p, id);
  return payload_checksum(p);
}

// What the logs say, and every way they break the group's promises.
struct LogVerdict {
  std::vector<std::string> problems;      // the first few
  std::size_t problem_count = 0;
  std::uint64_t processed = 0;            // processed entries
  std::uint64_t duplicated = 0;           // sequences processed more than once
  std::uint64_t acked = 0;                // sequences with an ok ack in the logs
  std::map<std::uint64_t, std::vector<GroupLogEntry>> of_interest;  // processed entries of `watch`
};

// Checks the processed entries of sequences 1..n in `entries`:
//  - every sequence is there (processed at least once), with the checksum of its payload and the
//    member's own content check passed;
//  - its deliveries have distinct attempt numbers; attempt 1 is not marked redelivered, every
//    later one is (so every repeat after the first delivery says it is one);
//  - no two ok acks for one sequence; no entry for a sequence outside 1..n.
// The processed entries of the sequences in `watch` are handed back for closer checks.
// `checksum` gives the payload checksum of a sequence (by default that of kGroupRule's records).
inline LogVerdict judge_logs(std::vector<GroupLogEntry> entries, std::uint64_t n,
                             const std::vector<std::uint64_t>& watch = {},
                             const std::function<std::uint64_t(std::uint64_t)>& checksum =
                                 expected_checksum) {
  LogVerdict v;
  auto problem = [&](const std::string& what) {
    if (v.problem_count++ < 20) v.problems.push_back(what);
  };
  std::sort(entries.begin(), entries.end(), [](const GroupLogEntry& a, const GroupLogEntry& b) {
    if (a.sequence != b.sequence) return a.sequence < b.sequence;
    if (a.kind != b.kind) return a.kind < b.kind;
    return a.attempt < b.attempt;
  });
  std::size_t i = 0;
  for (std::uint64_t s = 1; s <= n; ++s) {
    while (i < entries.size() && entries[i].sequence < s) {
      problem("an entry for sequence " + str(entries[i].sequence) + ", never published");
      ++i;
    }
    std::uint64_t seen = 0, acks = 0;
    std::uint32_t last_attempt = 0;
    const std::uint64_t want = checksum(s);
    const bool watched = std::find(watch.begin(), watch.end(), s) != watch.end();
    for (; i < entries.size() && entries[i].sequence == s; ++i) {
      const GroupLogEntry& e = entries[i];
      if (e.kind == GroupLogKind::acked) {
        ++acks;
        continue;
      }
      if (e.kind != GroupLogKind::processed) continue;
      ++seen;
      ++v.processed;
      if (watched) v.of_interest[s].push_back(e);
      if (e.checksum != want || (e.flags & kLogContentOk) == 0) {
        problem("sequence " + str(s) + " attempt " + str(e.attempt) + " (pid " + str(e.pid) +
                ") had the wrong content");
      }
      if (e.attempt == 0 || e.attempt <= last_attempt) {
        problem("sequence " + str(s) + " delivered twice as attempt " + str(e.attempt));
      }
      last_attempt = e.attempt;
      const bool redelivered = (e.flags & kLogRedelivered) != 0;
      if (redelivered != (e.attempt > 1)) {
        problem("sequence " + str(s) + " attempt " + str(e.attempt) + " (pid " + str(e.pid) +
                ") says redelivered=" + (redelivered ? "true" : "false"));
      }
    }
    if (seen == 0) problem("sequence " + str(s) + " was never processed");
    if (seen > 1) ++v.duplicated;
    if (acks > 1) problem("sequence " + str(s) + " was acked ok " + str(acks) + " times");
    if (acks > 0) ++v.acked;
  }
  for (; i < entries.size(); ++i) {
    problem("an entry for sequence " + str(entries[i].sequence) + ", never published");
  }
  return v;
}

inline std::string describe(const LogVerdict& v) {
  std::string s = str(v.problem_count) + " problems";
  for (const std::string& p : v.problems) s += "\n  " + p;
  return s;
}

// A member that ended by itself: all well (0), or all well but some acks were fenced (3).
inline bool ended_well(const PeerOutcome& o) {
  return o.status.exited && (o.status.code == 0 || o.status.code == 3);
}

}  // namespace shmbus::test::faults
