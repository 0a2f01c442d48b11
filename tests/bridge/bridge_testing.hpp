// What the bridge's end-to-end tests share: two hosts on one machine (`--host hostA` / `--host
// hostB`), the bridges as real `shmbus bridge out|in` processes (SHMBUS_CLI) against a real
// nats-server (tests/support/nats_server.hpp), a producer process (the peer program's `produce`,
// deterministic payloads of tests/support/payload.hpp), and the destination read by a named block
// subscriber in the test that checks every record by content and order.
//
// Header-only: SHMBUS_CLI and SHMBUS_TEST_PEER are compile definitions of the test programs.
#pragma once

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "shmbus/shmbus.hpp"
#include "tests/support/journal_files.hpp"
#include "tests/support/nats_server.hpp"
#include "tests/support/payload.hpp"
#include "tests/support/process.hpp"
#include "tests/support/shmbus_cli.hpp"

namespace shmbus::test::bridge {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

inline constexpr std::uint32_t kProducerId = 1;

// SHMBUS_BRIDGE_RECORDS (default 1,000,000: the round trip's count) scales every program's record
// count: a program that sends `fraction_of_million` of it by default sends that share of the
// variable's value (scripts/test.sh lowers it for the ASan build). At least `minimum`.
inline std::uint64_t scaled_records(std::uint64_t full_run, std::uint64_t minimum = 1000) {
  std::uint64_t base = 1'000'000;
  if (const char* v = std::getenv("SHMBUS_BRIDGE_RECORDS"); v != nullptr && *v != '\0') {
    base = std::strtoull(v, nullptr, 10);
  }
  return std::max<std::uint64_t>(minimum, full_run * base / 1'000'000);
}

// Creates channel `name` (the test's publisher goes away; the channel stays) so that bridges and
// subscribers attach to a known ring.
inline void create_channel(const std::string& name, std::uint64_t capacity,
                           std::uint32_t max_message = 64 << 10, bool single_producer = false) {
  ChannelOptions o;
  o.capacity = capacity;
  o.max_message = max_message;
  o.single_producer = single_producer;
  auto pub = Publisher::open(name, o);
  if (!pub) throw std::runtime_error("cannot create " + name + ": " + pub.error().message);
}

inline std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

inline std::size_t count_of(const std::string& text, std::string_view what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// One `shmbus bridge out|in` process, restartable, its stderr appended to a log file (never a
// pipe nobody reads: a bridge repeating a warning must not block on it).
class BridgeProcess {
 public:
  // role: "out" or "in"; args: what follows `shmbus bridge <role>`.
  BridgeProcess(std::string role, std::vector<std::string> args, std::string log_path)
      : role_(std::move(role)), args_(std::move(args)), log_path_(std::move(log_path)) {}

  // Spawns it and waits (up to `timeout`) for its "shmbus bridge <role>: running" line.
  void start(std::chrono::milliseconds timeout = 20s) {
    const std::string running = "shmbus bridge " + role_ + ": running";
    const std::size_t before = count_of(log(), running);
    std::vector<std::string> argv{"/bin/sh", "-c", "exec \"$0\" \"$@\" 2>>" + log_path_,
                                  SHMBUS_CLI, "bridge", role_};
    argv.insert(argv.end(), args_.begin(), args_.end());
    child_ = Child::spawn(argv);
    ++starts_;
    const auto deadline = Clock::now() + timeout;
    while (count_of(log(), running) == before) {
      if (!child_.running()) {
        throw std::runtime_error("shmbus bridge " + role_ + " exited at start (" +
                                 child_.wait(0ms)->describe() + "); its stderr:\n" + log());
      }
      if (Clock::now() >= deadline) {
        throw std::runtime_error("shmbus bridge " + role_ + " did not say it runs within " +
                                 std::to_string(timeout.count()) + " ms; its stderr:\n" + log());
      }
      std::this_thread::sleep_for(5ms);
    }
  }

  void kill9() { child_.kill_hard(); }

  // SIGTERM: a bridge stops cleanly and exits 0 (the contract); returns how it ended.
  ExitStatus stop(std::chrono::milliseconds timeout = 15s) {
    if (!child_.running()) return child_.wait(0ms).value_or(ExitStatus{});
    ::kill(child_.pid(), SIGTERM);
    auto st = child_.wait(timeout);
    if (!st) {
      child_.kill_hard();
      throw std::runtime_error("shmbus bridge " + role_ + " ignored SIGTERM for " +
                               std::to_string(timeout.count()) + " ms; its stderr:\n" + log());
    }
    return *st;
  }

  bool running() { return child_.running(); }
  pid_t pid() const { return child_.pid(); }
  int starts() const { return starts_; }
  std::string log() const { return read_text(log_path_); }

 private:
  std::string role_;
  std::vector<std::string> args_;
  std::string log_path_;
  Child child_;
  int starts_ = 0;
};

// A source host and a destination host on one machine, joined by one stream.
struct BridgePair {
  std::string source;       // channel on hostA
  std::string destination;  // channel on hostB
  std::string stream;
};

inline BridgeProcess bridge_out(const NatsServer& server, const BridgePair& p, const TempDir& logs,
                                std::vector<std::string> extra = {}) {
  std::vector<std::string> args{p.source, "--nats", server.url(), "--stream", p.stream,
                                "--host", "hostA"};
  args.insert(args.end(), extra.begin(), extra.end());
  return BridgeProcess("out", std::move(args), logs.file("bridge-out.log"));
}

inline BridgeProcess bridge_in(const NatsServer& server, const BridgePair& p, const TempDir& logs,
                               std::vector<std::string> extra = {}, std::string host = "hostB",
                               std::string channel = {}) {
  const std::string target = channel.empty() ? p.destination : channel;
  std::vector<std::string> args{"--nats", server.url(), "--stream", p.stream, target,
                                "--host", host};
  args.insert(args.end(), extra.begin(), extra.end());
  return BridgeProcess("in", std::move(args), logs.file("bridge-in." + target + ".log"));
}

// The peer program publishing `count` payloads of producer kProducerId, counters from `first`.
inline Child produce(const std::string& channel, std::uint64_t count, const SizeRule& sizes,
                     std::uint64_t first = 0, std::uint64_t timeout_ms = 120000) {
  return Child::spawn({SHMBUS_TEST_PEER, "produce", "--channel", channel, "--producer-id",
                       std::to_string(kProducerId), "--count", std::to_string(count),
                       "--first-counter", std::to_string(first), "--seed",
                       std::to_string(sizes.seed), "--min-size", std::to_string(sizes.min_size),
                       "--max-size", std::to_string(sizes.max_size), "--api", "batch",
                       "--batch", "32", "--timeout-ms", std::to_string(timeout_ms)});
}

// `shmbus stat CHANNEL --json`, parsed.
inline nlohmann::json channel_stats(const std::string& channel) {
  const RunResult r = run_shmbus({"stat", channel, "--json"});
  if (!r.status.ok()) {
    throw std::runtime_error("shmbus stat " + channel + " --json: " + r.status.describe() + "\n" +
                             r.out);
  }
  return nlohmann::json::parse(r.out);
}

// The entry of the stat's "bridges" array with this role ("out" or "in") and host, or null.
inline nlohmann::json bridge_stats(const std::string& channel, std::string_view role,
                                   std::string_view host = {}) {
  const nlohmann::json all = channel_stats(channel);
  if (!all.contains("bridges")) {
    throw std::runtime_error("shmbus stat " + channel + " --json has no \"bridges\": " + all.dump());
  }
  for (const auto& b : all["bridges"]) {
    if (b.value("role", "") == role && (host.empty() || b.value("host", "") == host)) return b;
  }
  return nullptr;
}

// A counter of a bridge's stats (0 when the bridge or the field is missing, which the caller's
// expectation then reports with the whole document).
inline std::uint64_t bridge_counter(const nlohmann::json& b, const std::string& field) {
  if (!b.is_object() || !b.contains(field) || !b[field].is_number_unsigned()) return 0;
  return b[field].get<std::uint64_t>();
}

// A loss the destination reported: the record with content counter `counter` (its sequence there
// `sequence`) came with lost_before = `lost`.
struct SeenGap {
  std::uint64_t counter;
  std::uint64_t sequence;
  std::uint64_t lost;
};

// The destination channel read by a named block subscriber: every record must carry the next
// counter of producer kProducerId (after a gap, when gaps are allowed, the counter lost_before
// further), with exactly the generated length and bytes; its key and type are returned for tagged
// records. The first errors are kept; the test fails on any.
class Destination {
 public:
  Destination(const std::string& channel, SizeRule sizes, bool gaps_skip_records = false)
      : sizes_(sizes), gaps_skip_records_(gaps_skip_records) {
    SubscriberOptions o;
    o.policy = Policy::block;
    o.start = StartFrom::earliest;
    o.name = "verify";
    o.open_timeout = 15s;
    auto sub = Subscriber::open(channel, o);
    if (!sub) throw std::runtime_error("cannot subscribe to " + channel + ": " + sub.error().message);
    sub_.emplace(std::move(*sub));
  }

  // Polls once (up to 1024 records), checking each. Returns how many arrived.
  std::size_t poll() {
    return sub_->poll([this](const Message& m) { check(m); }, 1024);
  }

  // Polls until `count` records have arrived; fails (returns false) when nothing arrives for
  // `quiet` or the whole wait exceeds `limit`. `between` runs after every poll.
  template <class Between>
  bool wait_for(std::uint64_t count, std::chrono::milliseconds quiet, std::chrono::seconds limit,
                Between&& between) {
    const auto end = Clock::now() + limit;
    auto last_progress = Clock::now();
    while (received_ < count) {
      if (poll() > 0) {
        last_progress = Clock::now();
      } else {
        sub_->wait(2ms);
      }
      between();
      const auto now = Clock::now();
      if (now - last_progress > quiet || now > end) return false;
    }
    return true;
  }
  bool wait_for(std::uint64_t count, std::chrono::milliseconds quiet = 30s,
                std::chrono::seconds limit = 150s) {
    return wait_for(count, quiet, limit, [] {});
  }

  // Polls for `how_long` and returns how many records arrived meanwhile (expecting none, say).
  std::uint64_t drain_for(std::chrono::milliseconds how_long) {
    const std::uint64_t before = received_;
    const auto end = Clock::now() + how_long;
    while (Clock::now() < end) {
      if (poll() == 0) sub_->wait(2ms);
    }
    return received_ - before;
  }

  std::uint64_t received() const { return received_; }
  std::uint64_t next_counter() const { return next_counter_; }
  std::uint64_t lost_total() const { return lost_total_; }
  const std::vector<SeenGap>& gaps() const { return gaps_; }
  const std::vector<std::string>& errors() const { return errors_; }
  std::uint64_t error_count() const { return error_count_; }
  Subscriber& subscriber() { return *sub_; }
  // Key and type of each record, when asked to keep them.
  void keep_tags(bool on) { keep_tags_ = on; }
  const std::vector<std::pair<std::string, std::uint16_t>>& tags() const { return tags_; }

  std::string summary() const {
    std::string s = "received " + std::to_string(received_) + ", next counter " +
                    std::to_string(next_counter_) + ", lost_before total " +
                    std::to_string(lost_total_) + ", " + std::to_string(error_count_) +
                    " errors";
    for (const std::string& e : errors_) s += "\n  " + e;
    return s;
  }

 private:
  void error(std::string what) {
    ++error_count_;
    if (errors_.size() < 10) errors_.push_back(std::move(what));
  }

  void check(const Message& m) {
    ++received_;
    if (m.lost_before > 0) {
      lost_total_ += m.lost_before;
      if (gaps_skip_records_) next_counter_ += m.lost_before;
    }
    const auto id = read_payload_id(m.payload);
    const std::string where = "record " + std::to_string(received_) + " (sequence " +
                              std::to_string(m.sequence) + ")";
    if (!id || id->producer != kProducerId) {
      error(where + ": no payload id of producer 1 (" + std::to_string(m.payload.size()) +
            " bytes)");
      return;
    }
    if (m.lost_before > 0) gaps_.push_back({id->counter, m.sequence, m.lost_before});
    if (id->counter != next_counter_) {
      error(where + ": counter " + std::to_string(id->counter) + ", expected " +
            std::to_string(next_counter_) + " (lost_before " + std::to_string(m.lost_before) +
            ")");
    }
    next_counter_ = id->counter + 1;
    const std::uint32_t length = payload_length(sizes_, *id);
    if (m.payload.size() != length) {
      error(where + ": " + std::to_string(m.payload.size()) + " bytes, expected " +
            std::to_string(length));
      return;
    }
    expected_.resize(length);
    fill_payload(expected_, *id);
    if (!std::equal(expected_.begin(), expected_.end(), m.payload.begin())) {
      error(where + ": payload bytes differ from counter " + std::to_string(id->counter) + "'s");
    }
    if (keep_tags_) {
      tags_.emplace_back(std::string(reinterpret_cast<const char*>(m.key.data()), m.key.size()),
                         m.message_type);
    }
  }

  SizeRule sizes_;
  bool gaps_skip_records_;
  std::optional<Subscriber> sub_;
  std::vector<std::byte> expected_;
  std::uint64_t received_ = 0;
  std::uint64_t next_counter_ = 0;
  std::uint64_t lost_total_ = 0;
  std::vector<SeenGap> gaps_;
  std::vector<std::string> errors_;
  std::uint64_t error_count_ = 0;
  bool keep_tags_ = false;
  std::vector<std::pair<std::string, std::uint16_t>> tags_;
};

// Waits until `done()` holds, up to `timeout`, checking every 20 ms.
template <class Done>
bool eventually(Done&& done, std::chrono::milliseconds timeout) {
  const auto end = Clock::now() + timeout;
  while (!done()) {
    if (Clock::now() > end) return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

}  // namespace shmbus::test::bridge
