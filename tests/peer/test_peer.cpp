// The other process of the multi-process tests. One role per subcommand:
//
//   produce         publishes --count deterministic payloads (tests/support/payload.hpp) with
//                   publish(), claim()/commit() or try_claim_batch()
//   consume         subscribes, verifies every message as it arrives, prints a summary; with
//                   --manual-release it releases its cursor every --release-every messages and
//                   reports the last released next sequence (released_next=)
//   hold            registers a subscriber and never polls (the test kills it)
//   claim-and-hang  claims space, writes half a payload, never commits (the test kills it)
//   group-member    a consumer group's member (tests/peer/group_member.hpp)
//   produce-keyed   publishes keyed records (tests/peer/keyed_producer.hpp)
//
// Every role reports on stdout in single lines written with write(2), so nothing sits in a stdio
// buffer when the test kills it: "READY ..." once attached, "CLAIMED seq=N", "ERROR <text>" for
// each verification failure (the first few), and last "RESULT key=value ...". Any error makes
// the exit code non-zero.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "shmbus/shmbus.hpp"
#include "tests/peer/group_member.hpp"
#include "tests/peer/keyed_producer.hpp"
#include "tests/peer/peer_output.hpp"
#include "tests/support/payload.hpp"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using shmbus::test::peer::say;
using shmbus::test::PayloadId;
using shmbus::test::SizeRule;

[[noreturn]] void hang_forever() {
  for (;;) ::pause();
}

struct ProduceArgs {
  std::string channel;
  std::uint32_t producer_id = 1;
  std::uint64_t count = 1000;
  std::uint64_t first_counter = 0;
  SizeRule sizes;
  double rate = 0;  // messages per second, 0 = as fast as the channel takes them
  std::uint64_t timeout_ms = 30000;
  std::string api = "publish";
  std::uint64_t capacity = 4 << 20;
  std::uint32_t max_message = 64 << 10;
  bool tolerate_abandoned = false;  // count commits that report `abandoned` and carry on
  std::size_t batch = 8;             // --api batch: messages per try_claim_batch
  bool single_producer = false;      // if it creates the channel
};

// Sequences handed out by claims must only go up, within one producer.
struct SequenceCheck {
  std::uint64_t first = 0;
  std::uint64_t last = 0;
  bool note(std::uint64_t seq) {
    if (first == 0) first = seq;
    if (seq <= last) {
      say("ERROR claim returned sequence " + std::to_string(seq) + " after " +
           std::to_string(last));
      return false;
    }
    last = seq;
    return true;
  }
};

// Claims `n` messages in one batch (retrying while back-pressured, up to `timeout`), fills and
// commits them in order. Returns the first status that is not ok; `done` counts those published.
shmbus::PublishStatus publish_batch(shmbus::Publisher& pub, const ProduceArgs& a,
                                    std::uint64_t first, std::size_t n,
                                    std::chrono::milliseconds timeout, SequenceCheck& seqs,
                                    std::uint64_t& abandoned, bool& bad_sequence) {
  std::uint32_t sizes[shmbus::Publisher::kMaxBatch];
  shmbus::Claim claims[shmbus::Publisher::kMaxBatch];
  for (std::size_t k = 0; k < n; ++k) {
    sizes[k] = shmbus::test::payload_length(a.sizes, PayloadId{a.producer_id, first + k});
  }
  const auto deadline = Clock::now() + timeout;
  shmbus::PublishStatus st;
  while ((st = pub.try_claim_batch({sizes, n}, {claims, n})) ==
         shmbus::PublishStatus::back_pressured) {
    if (Clock::now() >= deadline) return shmbus::PublishStatus::timed_out;
    std::this_thread::yield();
  }
  if (st != shmbus::PublishStatus::ok) return st;
  for (std::size_t k = 0; k < n; ++k) {
    shmbus::test::fill_payload(claims[k].span(), PayloadId{a.producer_id, first + k});
    if (!seqs.note(claims[k].sequence())) bad_sequence = true;
    const shmbus::PublishStatus c = pub.commit(claims[k]);
    if (c == shmbus::PublishStatus::abandoned && a.tolerate_abandoned) {
      ++abandoned;
    } else if (c != shmbus::PublishStatus::ok) {
      st = c;
    }
  }
  return st;
}

int produce(const ProduceArgs& a) {
  shmbus::ChannelOptions opts;
  opts.capacity = a.capacity;
  opts.max_message = a.max_message;
  opts.single_producer = a.single_producer;
  opts.accept_existing = true;  // the options are for creating it; any existing channel will do
  auto pub = shmbus::Publisher::open(a.channel, opts);
  if (!pub) {
    say("ERROR open: " + pub.error().message);
    say("RESULT role=produce published=0 errors=1");
    return 2;
  }
  say("READY incarnation=" + std::to_string(pub->info().incarnation));
  std::vector<std::byte> buf(a.sizes.max_size > 0 ? a.sizes.max_size : 1);
  const auto timeout = std::chrono::milliseconds(a.timeout_ms);
  const auto start = Clock::now();
  SequenceCheck seqs;
  std::uint64_t abandoned = 0;
  bool bad_sequence = false;
  std::uint64_t i = 0;
  while (i < a.count) {
    if (a.rate > 0 && (i & 15) == 0) {
      std::this_thread::sleep_until(start + std::chrono::nanoseconds(static_cast<std::int64_t>(
                                                static_cast<double>(i) * 1e9 / a.rate)));
    }
    const PayloadId id{a.producer_id, a.first_counter + i};
    const std::uint32_t len = shmbus::test::payload_length(a.sizes, id);
    shmbus::PublishStatus st;
    std::uint64_t step = 1;
    if (a.api == "batch") {
      step = std::min<std::uint64_t>(a.batch, a.count - i);
      st = publish_batch(*pub, a, id.counter, step, timeout, seqs, abandoned, bad_sequence);
    } else if (a.api == "claim") {
      shmbus::Claim c;
      st = pub->claim(len, c, timeout);
      if (st == shmbus::PublishStatus::ok) {
        shmbus::test::fill_payload(c.span(), id);
        if (!seqs.note(c.sequence())) bad_sequence = true;
        st = pub->commit(c);
      }
    } else {
      shmbus::test::fill_payload({buf.data(), len}, id);
      st = pub->publish({buf.data(), len}, timeout);
    }
    if (bad_sequence) return 1;
    if (st == shmbus::PublishStatus::abandoned && a.tolerate_abandoned) {
      ++abandoned;
      st = shmbus::PublishStatus::ok;
    }
    if (st != shmbus::PublishStatus::ok) {
      say(std::string("ERROR message ") + std::to_string(i) + ": " + shmbus::to_string(st));
      say("RESULT role=produce published=" + std::to_string(i) + " errors=1 status=" +
           shmbus::to_string(st));
      return 2;
    }
    i += step;
  }
  say("RESULT role=produce published=" + std::to_string(a.count) + " first_seq=" +
       std::to_string(seqs.first) + " last_seq=" + std::to_string(seqs.last) +
       " abandoned=" + std::to_string(abandoned) + " errors=0");
  return 0;
}

struct SubscribeArgs {
  std::string channel;
  std::string policy = "block";
  std::string name;
  std::string from = "latest";
  std::uint64_t liveness_ms = 5000;
  std::uint64_t abandon_ms = 1000;
  std::uint64_t open_timeout_ms = 5000;
  bool manual_release = false;  // publish the position only through release(cursor())
};

shmbus::Result<shmbus::Subscriber> open_subscriber(const SubscribeArgs& a) {
  shmbus::SubscriberOptions o;
  if (a.policy == "block") {
    o.policy = shmbus::Policy::block;
  } else if (a.policy == "drop") {
    o.policy = shmbus::Policy::drop;
  } else {
    o.policy = shmbus::Policy::spill;
  }
  if (a.from == "latest") {
    o.start = shmbus::StartFrom::latest;
  } else if (a.from == "earliest") {
    o.start = shmbus::StartFrom::earliest;
  } else {
    o.start = shmbus::StartFrom::sequence;
    o.start_sequence = std::stoull(a.from);
  }
  o.name = a.name;
  o.liveness_timeout = std::chrono::milliseconds(a.liveness_ms);
  o.abandon_timeout = std::chrono::milliseconds(a.abandon_ms);
  o.open_timeout = std::chrono::milliseconds(a.open_timeout_ms);
  o.manual_release = a.manual_release;
  return shmbus::Subscriber::open(a.channel, o);
}

struct ConsumeArgs {
  SubscribeArgs sub;
  std::uint64_t until_seq = 0;    // stop once a sequence >= this was delivered
  std::uint64_t stop_after = 0;   // stop after this many messages (0: no limit)
  std::string stop_mode = "clean";  // clean | hang | abort
  std::uint64_t sleep_every = 0;
  std::uint64_t sleep_us = 0;
  std::int64_t allow_lost = -1;   // -1: block allows none, drop any
  SizeRule sizes;
  std::int64_t single_producer = -1;
  std::string record;             // file: one byte per sequence, incremented on delivery
  std::uint64_t idle_timeout_ms = 30000;
  std::uint64_t batch = 256;
  std::uint64_t release_every = 1;  // --manual-release: release after this many more messages
};

// Tallies deliveries per sequence in a file the test maps too; it survives kill -9.
class Record {
 public:
  bool open(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) return false;
    struct stat st{};
    if (::fstat(fd, &st) != 0 || st.st_size <= 0) {
      ::close(fd);
      return false;
    }
    void* p = ::mmap(nullptr, static_cast<std::size_t>(st.st_size), PROT_READ | PROT_WRITE,
                     MAP_SHARED, fd, 0);
    ::close(fd);
    if (p == MAP_FAILED) return false;
    tally_ = static_cast<std::uint8_t*>(p);
    size_ = static_cast<std::size_t>(st.st_size);
    return true;
  }
  void note(std::uint64_t seq) {
    if (tally_ != nullptr && seq < size_ && tally_[seq] < 255) ++tally_[seq];
  }

 private:
  std::uint8_t* tally_ = nullptr;
  std::size_t size_ = 0;
};

int consume(const ConsumeArgs& a) {
  Record record;
  if (!a.record.empty() && !record.open(a.record)) {
    say("ERROR cannot map record file " + a.record);
    return 2;
  }
  auto sub = open_subscriber(a.sub);
  if (!sub) {
    say("ERROR open: " + sub.error().message);
    say("RESULT role=consume received=0 errors=1");
    return 2;
  }
  say("READY next_seq=" + std::to_string(sub->next_sequence()));

  const bool block = a.sub.policy == "block";
  const std::int64_t allow_lost = a.allow_lost >= 0 ? a.allow_lost : (block ? 0 : INT64_MAX);
  shmbus::test::Verifier verifier(a.sizes, block);
  if (a.single_producer >= 0) {
    verifier.expect_single_producer(static_cast<std::uint32_t>(a.single_producer));
  }

  std::uint64_t received = 0, lost = 0, errors = 0, first_seq = 0, last_seq = 0;
  std::uint64_t checksum = shmbus::test::kChecksumSeed;
  std::string gaps;
  int gap_entries = 0;
  bool done = false;
  auto error = [&](const std::string& what) {
    if (++errors <= 10) say("ERROR " + what);
  };
  auto on_message = [&](const shmbus::Message& m) {
    if (received > 0) {
      if (m.sequence <= last_seq) {
        error("sequence " + std::to_string(m.sequence) + " delivered after " +
              std::to_string(last_seq));
      } else if (m.sequence != last_seq + 1 + m.lost_before) {
        error("sequence " + std::to_string(m.sequence) + " after " + std::to_string(last_seq) +
              " but lost_before is " + std::to_string(m.lost_before));
      }
    } else {
      first_seq = m.sequence;
    }
    if (m.lost_before > 0) {
      lost += m.lost_before;
      if (gap_entries++ < 16) {
        gaps += (gaps.empty() ? "" : ",") + std::to_string(m.sequence) + ":" +
                std::to_string(m.lost_before);
      }
      if (static_cast<std::int64_t>(lost) > allow_lost) {
        error("lost " + std::to_string(m.lost_before) + " before sequence " +
              std::to_string(m.sequence) + " (" + std::to_string(lost) + " in all)");
      }
    }
    if (auto err = verifier.check(m.payload, m.lost_before)) {
      error("sequence " + std::to_string(m.sequence) + ": " + *err);
    }
    checksum = shmbus::test::fold_checksum(checksum, m.sequence,
                                           shmbus::test::payload_checksum(m.payload));
    record.note(m.sequence);
    last_seq = m.sequence;
    ++received;
    if (a.until_seq != 0 && m.sequence >= a.until_seq) done = true;
  };

  auto last_progress = Clock::now();
  const auto idle_timeout = std::chrono::milliseconds(a.idle_timeout_ms);
  std::uint64_t next_sleep = a.sleep_every;
  std::uint64_t released_at = 0;    // `received` at the last release
  std::uint64_t released_next = 0;  // the cursor's next sequence then (0: none released)
  while (!done) {
    std::size_t max = a.batch;
    if (a.stop_after != 0) max = std::min<std::uint64_t>(max, a.stop_after - received);
    const std::size_t n = sub->poll(on_message, max);
    if (a.sub.manual_release && received >= released_at + a.release_every) {
      const shmbus::Subscriber::Cursor c = sub->cursor();
      sub->release(c);
      released_at = received;
      released_next = c.next_sequence;
    }
    if (sub->status() != shmbus::PollStatus::ok) {
      error(std::string("poll status ") +
            (sub->status() == shmbus::PollStatus::corrupt ? "corrupt" : "evicted") + ": " +
            sub->last_error());
      break;
    }
    if (a.stop_after != 0 && received >= a.stop_after) break;
    if (n > 0) {
      last_progress = Clock::now();
      if (a.sleep_every != 0 && received >= next_sleep) {
        next_sleep = received + a.sleep_every;
        std::this_thread::sleep_for(std::chrono::microseconds(a.sleep_us));
      }
      continue;
    }
    if (!sub->wait(50ms) && Clock::now() - last_progress > idle_timeout) {
      error("nothing delivered for " + std::to_string(a.idle_timeout_ms) + " ms at sequence " +
            std::to_string(sub->next_sequence()));
      break;
    }
  }

  std::string producers;
  const auto& counts = verifier.counts();
  for (std::size_t p = 0; p < counts.size(); ++p) {
    if (counts[p] == 0) continue;
    producers += (producers.empty() ? "" : ",") + std::to_string(p) + ":" +
                 std::to_string(counts[p]) + ":" + std::to_string(verifier.last_counters()[p]);
  }
  char sum[32];
  std::snprintf(sum, sizeof sum, "0x%016" PRIx64, checksum);
  say("RESULT role=consume received=" + std::to_string(received) + " lost=" +
       std::to_string(lost) + " sub_lost=" + std::to_string(sub->lost()) +
       " sub_received=" + std::to_string(sub->received()) + " first_seq=" +
       std::to_string(first_seq) + " last_seq=" + std::to_string(last_seq) + " next_seq=" +
       std::to_string(sub->next_sequence()) + " errors=" + std::to_string(errors) +
       " checksum=" + sum + " gaps=" + (gaps.empty() ? "-" : gaps) +
       " released_next=" + std::to_string(released_next) +
       " producers=" + (producers.empty() ? "-" : producers));
  if (a.stop_mode == "hang") hang_forever();
  if (a.stop_mode == "abort") ::_exit(errors == 0 ? 0 : 1);
  return errors == 0 ? 0 : 1;  // the Subscriber's destructor unregisters it
}

int hold(const SubscribeArgs& a) {
  auto sub = open_subscriber(a);
  if (!sub) {
    say("ERROR open: " + sub.error().message);
    return 2;
  }
  say("READY next_seq=" + std::to_string(sub->next_sequence()));
  hang_forever();
}

struct HangArgs {
  std::string channel;
  std::uint32_t producer_id = 99;
  std::uint64_t counter = 0;
  std::uint32_t size = 200;
  std::uint64_t timeout_ms = 30000;
};

int claim_and_hang(const HangArgs& a) {
  auto pub = shmbus::Publisher::open(a.channel);
  if (!pub) {
    say("ERROR open: " + pub.error().message);
    return 2;
  }
  shmbus::Claim c;
  const auto st = pub->claim(a.size, c, std::chrono::milliseconds(a.timeout_ms));
  if (st != shmbus::PublishStatus::ok) {
    say(std::string("ERROR claim: ") + shmbus::to_string(st));
    return 2;
  }
  std::vector<std::byte> full(a.size);
  shmbus::test::fill_payload(full, PayloadId{a.producer_id, a.counter});
  std::memcpy(c.data(), full.data(), a.size / 2);
  say("CLAIMED seq=" + std::to_string(c.sequence()));
  hang_forever();
}

void add_sizes(CLI::App* cmd, SizeRule& s) {
  cmd->add_option("--seed", s.seed, "size seed");
  cmd->add_option("--min-size", s.min_size, "smallest payload");
  cmd->add_option("--max-size", s.max_size, "largest payload");
}

void add_subscribe(CLI::App* cmd, SubscribeArgs& s) {
  cmd->add_option("--channel", s.channel)->required();
  cmd->add_option("--policy", s.policy)->check(CLI::IsMember({"block", "drop", "spill"}));
  cmd->add_option("--name", s.name, "named subscriber (resumes)");
  cmd->add_option("--from", s.from, "earliest, latest or a sequence");
  cmd->add_option("--liveness-ms", s.liveness_ms);
  cmd->add_option("--abandon-ms", s.abandon_ms);
  cmd->add_option("--open-timeout-ms", s.open_timeout_ms);
  cmd->add_flag("--manual-release", s.manual_release,
                "poll never publishes the position; release(cursor()) does");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"shmbus test peer"};
  app.require_subcommand(1);

  ProduceArgs pa;
  auto* produce_cmd = app.add_subcommand("produce", "publish deterministic payloads");
  produce_cmd->add_option("--channel", pa.channel)->required();
  produce_cmd->add_option("--producer-id", pa.producer_id);
  produce_cmd->add_option("--count", pa.count);
  produce_cmd->add_option("--first-counter", pa.first_counter);
  produce_cmd->add_option("--rate", pa.rate, "messages per second");
  produce_cmd->add_option("--timeout-ms", pa.timeout_ms, "per publish");
  produce_cmd->add_option("--api", pa.api)->check(CLI::IsMember({"publish", "claim", "batch"}));
  produce_cmd->add_option("--batch", pa.batch, "messages per batch claim")
      ->check(CLI::Range(std::size_t{1}, shmbus::Publisher::kMaxBatch));
  produce_cmd->add_flag("--single-producer", pa.single_producer, "if it creates the channel");
  produce_cmd->add_option("--capacity", pa.capacity, "if it creates the channel");
  produce_cmd->add_option("--max-message", pa.max_message, "if it creates the channel");
  produce_cmd->add_flag("--tolerate-abandoned", pa.tolerate_abandoned,
                        "count commits reported abandoned instead of failing");
  add_sizes(produce_cmd, pa.sizes);

  ConsumeArgs ca;
  auto* consume_cmd = app.add_subcommand("consume", "subscribe and verify");
  add_subscribe(consume_cmd, ca.sub);
  consume_cmd->add_option("--until-seq", ca.until_seq);
  consume_cmd->add_option("--stop-after", ca.stop_after);
  consume_cmd->add_option("--stop-mode", ca.stop_mode)
      ->check(CLI::IsMember({"clean", "hang", "abort"}));
  consume_cmd->add_option("--sleep-every", ca.sleep_every);
  consume_cmd->add_option("--sleep-us", ca.sleep_us);
  consume_cmd->add_option("--allow-lost", ca.allow_lost);
  consume_cmd->add_option("--single-producer", ca.single_producer);
  consume_cmd->add_option("--record", ca.record);
  consume_cmd->add_option("--idle-timeout-ms", ca.idle_timeout_ms);
  consume_cmd->add_option("--batch", ca.batch);
  consume_cmd->add_option("--release-every", ca.release_every,
                          "--manual-release: release the cursor after this many more messages");
  add_sizes(consume_cmd, ca.sizes);

  SubscribeArgs ha;
  auto* hold_cmd = app.add_subcommand("hold", "register a subscriber and never poll");
  add_subscribe(hold_cmd, ha);

  HangArgs ga;
  auto* hang_cmd = app.add_subcommand("claim-and-hang", "claim, write half, never commit");
  hang_cmd->add_option("--channel", ga.channel)->required();
  hang_cmd->add_option("--producer-id", ga.producer_id);
  hang_cmd->add_option("--counter", ga.counter);
  hang_cmd->add_option("--size", ga.size);
  hang_cmd->add_option("--timeout-ms", ga.timeout_ms);

  shmbus::test::peer::GroupMemberArgs gm;
  auto* group_member_cmd = shmbus::test::peer::add_group_member_command(app, gm);
  shmbus::test::peer::KeyedProducerArgs kp;
  auto* keyed_producer_cmd = shmbus::test::peer::add_keyed_producer_command(app, kp);

  CLI11_PARSE(app, argc, argv);
  if (*produce_cmd) return produce(pa);
  if (*consume_cmd) return consume(ca);
  if (*hold_cmd) return hold(ha);
  if (*hang_cmd) return claim_and_hang(ga);
  if (*group_member_cmd) return shmbus::test::peer::group_member(gm);
  if (*keyed_producer_cmd) return shmbus::test::peer::keyed_producer(kp);
  return 2;
}
