#include "tests/peer/group_member.hpp"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <vector>

#include "shmbus/group_consumer.hpp"
#include "tests/peer/keyed_member.hpp"
#include "tests/support/group_log.hpp"

#include "tests/peer/peer_output.hpp"

namespace shmbus::test::peer {
namespace {

using Clock = std::chrono::steady_clock;

std::string str(std::uint64_t v) { return std::to_string(v); }

// Whether `payload` is exactly what the producer published as record `sequence`.
class ContentCheck {
 public:
  ContentCheck(std::uint32_t producer, SizeRule sizes) : producer_(producer), sizes_(sizes) {}
  bool matches(std::uint64_t sequence, std::span<const std::byte> payload) {
    if (sequence == 0) return false;
    const PayloadId id{producer_, sequence - 1};
    const std::uint32_t len = payload_length(sizes_, id);
    if (payload.size() != len) return false;
    scratch_.resize(len);
    fill_payload(scratch_, id);
    return std::memcmp(scratch_.data(), payload.data(), len) == 0;
  }

 private:
  std::uint32_t producer_;
  SizeRule sizes_;
  std::vector<std::byte> scratch_;
};

}  // namespace

CLI::App* add_group_member_command(CLI::App& app, GroupMemberArgs& a) {
  auto* cmd = app.add_subcommand("group-member", "join a consumer group, check, log and ack");
  cmd->add_option("--channel", a.channel)->required();
  cmd->add_option("--group", a.group);
  cmd->add_option("--ack-timeout-ms", a.ack_timeout_ms);
  cmd->add_option("--max-attempts", a.max_attempts);
  cmd->add_option("--window", a.window);
  cmd->add_option("--log", a.log, "work log (tests/support/group_log.hpp)");
  cmd->add_option("--producer-id", a.producer_id);
  cmd->add_option("--seed", a.sizes.seed, "size seed");
  cmd->add_option("--min-size", a.sizes.min_size, "smallest payload");
  cmd->add_option("--max-size", a.sizes.max_size, "largest payload");
  cmd->add_option("--until-retired", a.until_retired, "stop once the group retired this far");
  cmd->add_option("--run-ms", a.run_ms, "stop after this long");
  cmd->add_option("--idle-timeout-ms", a.idle_timeout_ms);
  cmd->add_option("--fail-seq", a.fail_seq, "nack this sequence at every delivery");
  cmd->add_option("--fail-reason", a.fail_reason);
  cmd->add_option("--stop-after", a.stop_after, "SIGSTOP itself after this many deliveries");
  cmd->add_option("--work-ns", a.work_ns, "busy work per record");
  cmd->add_flag("--keyed", a.keyed, "per-key order (GroupOptions::keyed)");
  cmd->add_option("--key-table", a.key_table, "the keyed proof's shared key table");
  cmd->add_option("--keys", a.keys, "keys of the keyed proof");
  cmd->add_option("--batch", a.batch)->check(CLI::Range(std::size_t{1}, std::size_t{4096}));
  return cmd;
}

int group_member(const GroupMemberArgs& a) {
  GroupOptions o;
  o.ack_timeout = std::chrono::milliseconds(a.ack_timeout_ms);
  o.max_attempts = a.max_attempts;
  o.window = a.window;
  o.keyed = a.keyed;
  o.open_timeout = std::chrono::milliseconds(5000);
  auto joined = GroupConsumer::open(a.channel, a.group, o);
  if (!joined) {
    say("ERROR open: " + joined.error().message);
    say("RESULT role=group-member delivered=0 errors=1");
    return 2;
  }
  GroupConsumer& g = *joined;
  GroupLogWriter log;
  if (!a.log.empty() && !log.open(a.log)) {
    say("ERROR cannot open the log " + a.log);
    return 2;
  }
  KeyedWork keyed;
  if (!a.key_table.empty()) {
    std::string why;
    if (!keyed.open(a.key_table, a.keys, a.producer_id, a.sizes, why)) {
      say("ERROR " + why);
      return 2;
    }
  }
  const bool keyed_work = !a.key_table.empty();
  const std::uint32_t pid = static_cast<std::uint32_t>(::getpid());
  say("READY member=" + str(g.member_index()) + " pid=" + str(pid));

  ContentCheck content(a.producer_id, a.sizes);
  std::vector<GroupLogEntry> done;   // this poll's deliveries, each logged as it arrives
  std::vector<GroupLogEntry> after;  // what the acks and nacks returned
  std::uint64_t deliveries = 0, errors = 0, fenced = 0;
  bool stopped = false, corrupt_said = false;
  std::string last_error_said;
  const auto start = Clock::now();
  auto last_progress = start;
  for (;;) {
    if (a.until_retired != 0 && g.retired_through() >= a.until_retired) break;
    const auto now = Clock::now();
    if (a.run_ms != 0 && now - start >= std::chrono::milliseconds(a.run_ms)) break;
    done.clear();
    const std::size_t n = g.poll(
        [&](const GroupMessage& m) {
          GroupLogEntry e;
          e.sequence = m.sequence;
          e.attempt = m.attempt;
          e.kind = GroupLogKind::processed;
          e.checksum = payload_checksum(m.payload);
          e.pid = pid;
          e.member = g.member_index();
          if (m.redelivered) e.flags |= kLogRedelivered;
          if (keyed_work) {
            // Checked, marked, worked on and unmarked (keyed_member.hpp); logged, then acked
            // at once, so that a kill finds at most this one record held.
            if (keyed.process(m, a.work_ns)) {
              e.flags |= kLogContentOk;
            } else if (++errors <= 10) {
              say("ERROR sequence " + str(m.sequence) + " attempt " + str(m.attempt) +
                  ": not the keyed record of its sequence");
            }
            if (!a.log.empty() && !log.append({&e, 1})) {
              ++errors;
              say("ERROR cannot write the log");
            }
            const AckStatus st = g.ack(m.sequence);
            GroupLogEntry r = e;
            r.kind = st == AckStatus::ok ? GroupLogKind::acked : GroupLogKind::fenced;
            if (st == AckStatus::fenced) {
              ++fenced;
              say("FENCED seq=" + str(m.sequence) + " attempt=" + str(m.attempt));
            } else if (st != AckStatus::ok) {
              ++errors;
              say("ERROR " + std::string(to_string(st)) + " for sequence " + str(m.sequence));
            }
            if (!a.log.empty()) (void)log.append({&r, 1});
            return;
          }
          if (content.matches(m.sequence, m.payload)) {
            e.flags |= kLogContentOk;
          } else if (++errors <= 10) {
            say("ERROR sequence " + str(m.sequence) + " attempt " + str(m.attempt) + ": " +
                str(m.payload.size()) + " bytes that are not its payload");
          }
          done.push_back(e);
          // Logged as soon as it is checked (the acks come after the whole batch): a kill in
          // the batch leaves records logged and not acked, which the group must redeliver
          // marked as such.
          if (!a.log.empty() && !log.append({&e, 1})) {
            ++errors;
            say("ERROR cannot write the log");
          }
          if (a.work_ns != 0) {
            const auto until = Clock::now() + std::chrono::nanoseconds(a.work_ns);
            while (Clock::now() < until) {
            }
          }
        },
        a.batch);
    if (g.status() != GroupStatus::ok && !corrupt_said) {
      corrupt_said = true;
      say("GROUPSTATUS " + std::string(g.status() == GroupStatus::corrupt ? "corrupt" : "other") +
          ": " + g.last_error());
    }
    if (!g.last_error().empty() && g.last_error() != last_error_said) {
      last_error_said = g.last_error();
      say("LASTERROR " + last_error_said);
    }
    if (n == 0) {
      if (a.until_retired != 0 && a.idle_timeout_ms != 0 &&
          now - last_progress > std::chrono::milliseconds(a.idle_timeout_ms)) {
        ++errors;
        say("ERROR nothing to do for " + str(a.idle_timeout_ms) + " ms; retired through " +
            str(g.retired_through()));
        break;
      }
      g.wait(std::chrono::milliseconds(20));
      continue;
    }
    last_progress = now;
    deliveries += n;
    if (a.stop_after != 0 && !stopped && deliveries >= a.stop_after) {
      stopped = true;
      std::string seqs;
      for (const GroupLogEntry& e : done) seqs += (seqs.empty() ? "" : ",") + str(e.sequence);
      say("HOLDING seqs=" + seqs);
      ::raise(SIGSTOP);  // the test continues (or kills) us
      say("CONTINUED");
    }
    after.clear();
    for (const GroupLogEntry& e : done) {
      GroupLogEntry r = e;
      AckStatus st;
      if (e.sequence == a.fail_seq) {
        st = g.nack(e.sequence, a.fail_reason);
        r.kind = st == AckStatus::ok ? GroupLogKind::nacked : GroupLogKind::fenced;
      } else {
        st = g.ack(e.sequence);
        r.kind = st == AckStatus::ok ? GroupLogKind::acked : GroupLogKind::fenced;
      }
      if (st == AckStatus::fenced) {
        ++fenced;
        say("FENCED seq=" + str(e.sequence) + " attempt=" + str(e.attempt));
      } else if (st != AckStatus::ok) {
        ++errors;
        say("ERROR " + std::string(to_string(st)) + " for sequence " + str(e.sequence));
      }
      after.push_back(r);
    }
    if (!a.log.empty()) (void)log.append(after);
  }
  say("RESULT role=group-member member=" + str(g.member_index()) + " delivered=" +
      str(g.delivered()) + " acked=" + str(g.acked()) + " nacked=" + str(g.nacked()) +
      " redelivered=" + str(g.redelivered()) + " fenced=" + str(g.fenced()) +
      " fenced_seen=" + str(fenced) + " errors=" + str(errors) +
      " violations=" + str(keyed.violations()) + " takeovers=" + str(keyed.takeovers()) +
      " corrupt=" + (g.status() == GroupStatus::corrupt ? "1" : "0") +
      " retired_through=" + str(g.retired_through()));
  if (errors != 0 || keyed.violations() != 0 || g.status() == GroupStatus::corrupt) return 1;
  return fenced != 0 ? 3 : 0;
}

}  // namespace shmbus::test::peer
