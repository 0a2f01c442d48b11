// The processes of the soak (soak_test.cpp): producers and subscribers, each run in a forked
// child, each writing what the checker needs to a log file of its own with one write(2) per line,
// so that a kill -9 loses at most the line it was about to write.
//
// Producer log lines:   "C <sequence> <counter>"   after each commit that returned ok
//                       "F <monotonic ns>"          at its first commit (recovery time)
// Subscriber log lines: "F <monotonic ns> <seq>"   at its first delivery
//                       "G <first lost> <count>"   each gap (lost_before > 0)
//                       "U"                         the journal could not serve it (spill)
//                       "V <text>"                  a violation it saw (order, payload)
#pragma once

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "shmbus/shmbus.hpp"
#include "tests/support/payload.hpp"

namespace shmbus::test::soak {

inline constexpr SizeRule kSoakSizes{23, static_cast<std::uint32_t>(kPayloadIdBytes), 400};

inline std::int64_t monotonic_now_ns() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

class LogFile {
 public:
  explicit LogFile(const std::string& path)
      : fd_(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) {}
  ~LogFile() {
    if (fd_ >= 0) ::close(fd_);
  }
  LogFile(const LogFile&) = delete;
  LogFile& operator=(const LogFile&) = delete;
  void line(const std::string& text) {
    const std::string whole = text + "\n";
    if (fd_ >= 0 && ::write(fd_, whole.data(), whole.size()) < 0) return;
  }

 private:
  int fd_;
};

// Publishes producer `id`'s messages 0, 1, 2, ... at about `rate` per second until killed.
inline int run_producer(const std::string& channel, std::uint32_t id, double rate,
                        const std::string& log_path) {
  LogFile log(log_path);
  auto pub = Publisher::open(channel);
  if (!pub) {
    log.line("V producer open: " + pub.error().message);
    return 2;
  }
  std::vector<std::byte> buf(kSoakSizes.max_size);
  const auto start = std::chrono::steady_clock::now();
  for (std::uint64_t counter = 0;; ++counter) {
    if ((counter & 7) == 0) {
      std::this_thread::sleep_until(
          start + std::chrono::nanoseconds(static_cast<std::int64_t>(counter * 1e9 / rate)));
    }
    const PayloadId pid{id, counter};
    const std::uint32_t len = payload_length(kSoakSizes, pid);
    fill_payload({buf.data(), len}, pid);
    Claim claim;
    PublishStatus st;
    while ((st = pub->claim(len, claim, std::chrono::seconds(1))) == PublishStatus::timed_out) {
    }
    if (st != PublishStatus::ok) {
      log.line(fmt::format("V producer {} claim: {}", id, to_string(st)));
      return 2;
    }
    std::memcpy(claim.data(), buf.data(), len);
    const std::uint64_t sequence = claim.sequence();
    st = pub->commit(claim);
    if (st == PublishStatus::ok) {
      if (counter == 0) log.line(fmt::format("F {}", monotonic_now_ns()));
      log.line(fmt::format("C {} {}", sequence, counter));
    } else if (st != PublishStatus::abandoned) {  // abandoned: not committed, never logged
      log.line(fmt::format("V producer {} commit: {}", id, to_string(st)));
      return 2;
    }
  }
}

// A named subscriber of `policy`, verifying order, loss accounting and every payload, until
// killed. Retries its open for a while (a spill one needs the journaler attached).
inline int run_subscriber(const std::string& channel, Policy policy, bool first_start,
                          const std::string& log_path) {
  LogFile log(log_path);
  SubscriberOptions o;
  o.policy = policy;
  o.name = fmt::format("soak-{}", to_string(policy));
  o.start = first_start ? StartFrom::earliest : StartFrom::latest;
  o.abandon_timeout = std::chrono::milliseconds(200);
  o.liveness_timeout = std::chrono::seconds(10);
  Result<Subscriber> sub = Subscriber::open(channel, o);
  for (int attempt = 0; !sub && attempt < 200; ++attempt) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
    sub = Subscriber::open(channel, o);
  }
  if (!sub) {
    log.line("V subscriber open: " + sub.error().message);
    return 2;
  }
  Verifier verifier(kSoakSizes, false);
  std::uint64_t last = 0;
  bool delivered = false;
  bool unavailable = false;  // logged once per spell
  for (;;) {
    sub->poll([&](const Message& m) {
      if (!delivered) {
        delivered = true;
        log.line(fmt::format("F {} {}", monotonic_now_ns(), m.sequence));
      } else if (m.sequence <= last) {
        log.line(fmt::format("V sequence {} delivered after {}", m.sequence, last));
      } else if (m.sequence != last + 1 + m.lost_before) {
        log.line(fmt::format("V sequence {} after {} with lost_before {}", m.sequence, last,
                             m.lost_before));
      }
      if (m.lost_before > 0) {
        log.line(fmt::format("G {} {}", m.sequence - m.lost_before, m.lost_before));
      }
      if (auto bad = verifier.check(m.payload, m.lost_before)) {
        log.line(fmt::format("V sequence {}: {}", m.sequence, *bad));
      }
      last = m.sequence;
    });
    if (sub->status() == PollStatus::journal_unavailable) {
      if (!unavailable) log.line("U");
      unavailable = true;
    } else if (sub->status() != PollStatus::ok) {
      log.line(fmt::format("V poll status {}: {}", static_cast<int>(sub->status()),
                           sub->last_error()));
      return 1;
    } else {
      unavailable = false;
    }
    sub->wait(std::chrono::milliseconds(20));
  }
}

}  // namespace shmbus::test::soak
