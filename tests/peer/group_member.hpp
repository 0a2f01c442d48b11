// The consumer-group roles of the peer program (tests/peer/test_peer.cpp):
//
//   group-member    joins a group, checks every record's payload against its sequence, logs what
//                   it did to its own work log (tests/support/group_log.hpp: written before each
//                   ack) and acks; until the group has retired --until-retired, or --run-ms passed.
//                   --fail-seq S: nacks S at every delivery (reason --fail-reason). --stop-after K:
//                   once it has logged K deliveries, prints "HOLDING seqs=..." and stops itself
//                   (SIGSTOP) before acking them; continued, it acks them and reports each refused
//                   ack as "FENCED seq=N". --work-ns: spins this long per record (its work),
//                   so that a kill at a random moment usually finds it holding records.
//                   --keyed: joins (or creates) the group with GroupOptions::keyed. --key-table
//                   PATH (with --keys K): the records are those of the keyed proof
//                   (tests/support/keyed_records.hpp); each is checked, worked on and marked in
//                   the shared key table as tests/peer/keyed_member.hpp says, then acked at once
//                   (inside the poll), so that a member holds one record at a time.
//
// Exit code: 0 all well; 1 a payload did not match its sequence, a keyed violation, the group
// reported corrupt state, or no progress for --idle-timeout-ms; 2 it could not join; 3 all well
// except that some acks were refused as fenced. The last line is "RESULT role=group-member ...".
#pragma once

#include <cstdint>
#include <string>

#include <CLI/CLI.hpp>

#include "tests/support/payload.hpp"

namespace shmbus::test::peer {

struct GroupMemberArgs {
  std::string channel;
  std::string group = "workers";
  std::uint64_t ack_timeout_ms = 2000;
  std::uint32_t max_attempts = 5;
  std::uint32_t window = 4096;
  std::string log;                 // the work log's path; none: no log
  std::uint32_t producer_id = 1;   // whose payloads the channel carries: counter = sequence - 1
  SizeRule sizes;
  std::uint64_t until_retired = 0;  // stop once retired_through() >= this (0: never)
  std::uint64_t run_ms = 0;         // stop after this long (0: no limit)
  std::uint64_t idle_timeout_ms = 30000;
  std::uint64_t fail_seq = 0;       // nack this sequence every time (0: none)
  std::string fail_reason = "always fails";
  std::uint64_t stop_after = 0;     // SIGSTOP itself after this many deliveries (0: never)
  std::size_t batch = 64;           // records per poll
  std::uint64_t work_ns = 0;        // busy work per record before it is logged (holds it longer)
  bool keyed = false;               // GroupOptions::keyed
  std::string key_table;            // the keyed proof's shared key table; none: ordinary records
  std::uint32_t keys = 64;          // keys of the keyed proof
};

// Adds the "group-member" subcommand, filling `args`.
CLI::App* add_group_member_command(CLI::App& app, GroupMemberArgs& args);

int group_member(const GroupMemberArgs& args);

}  // namespace shmbus::test::peer
