// Small helpers for tests that publish and subscribe within the test process.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "shmbus/shmbus.hpp"

namespace shmbus::test {

// 64 KiB ring, 1 KiB messages, a short open timeout.
ChannelOptions small_options();

SubscriberOptions sub_options(Policy policy, StartFrom start = StartFrom::latest);

std::vector<std::byte> bytes_of(std::string_view text);

struct Received {
  std::uint64_t sequence;
  std::uint64_t lost_before;
  std::string payload;
};

// Polls (never further than) until `want` messages arrived or `timeout` passed.
std::vector<Received> receive_messages(Subscriber& sub, std::size_t want,
                                       std::chrono::milliseconds timeout = std::chrono::seconds(10));
// The same, payloads only.
std::vector<std::string> receive(Subscriber& sub, std::size_t want,
                                 std::chrono::milliseconds timeout = std::chrono::seconds(10));

}  // namespace shmbus::test

namespace shmbus {
// Readable names in GoogleTest messages.
void PrintTo(Policy policy, std::ostream* os);
void PrintTo(PollStatus status, std::ostream* os);
void PrintTo(PublishStatus status, std::ostream* os);
void PrintTo(ErrorCode code, std::ostream* os);
}  // namespace shmbus

namespace shmbus::journal {
class JournalWriter;
}
namespace shmbus::detail {
class ChannelMapping;
}

namespace shmbus::test {

// A journaler for tests (the real one is Journaler in include/shmbus/journaler.hpp, `shmbus record`): a named block
// subscriber with manual release that appends every message to a journal::JournalWriter in
// `dir`, releases the ring only once the writes holding its records have completed, and reports
// its progress in the channel's control segment (detail::publish_journal_progress).
struct TestJournalerOptions {
  std::string channel;
  std::string dir;
  std::string name = "journal";
  std::uint64_t segment_bytes = 256 << 10;  // small: catch-ups cross segment files
  std::chrono::nanoseconds liveness_timeout = std::chrono::seconds(5);
};

class TestJournaler {
 public:
  // Attaches: subscriber (from the earliest retained message), journal link, writer.
  static Result<std::unique_ptr<TestJournaler>> open(const TestJournalerOptions& options);
  ~TestJournaler();  // drains, releases, reports, detaches

  // One round: poll, append, flush, reap, release what is written, report. Returns how many
  // messages it appended, or the first error.
  Result<std::size_t> step();
  // Steps until `stop` is set (waiting on the ring when idle). Returns the first error, if any.
  std::optional<std::string> run(const std::atomic<bool>& stop);

  std::uint64_t written() const;
  // The ring position the journaler has released (the producers may overwrite before it).
  std::uint64_t released_position() const { return released_position_; }

 private:
  TestJournaler() = default;
  void release_written();

  std::shared_ptr<detail::ChannelMapping> channel_;  // where the journal link lives
  std::optional<Subscriber> sub_;
  std::unique_ptr<journal::JournalWriter> writer_;
  struct Pending {
    std::uint64_t last_sequence;
    Subscriber::Cursor cursor;
  };
  std::vector<Pending> pending_;
  std::atomic<std::uint64_t> released_position_{0};
};

// A TestJournaler on its own thread.
class JournalerThread {
 public:
  explicit JournalerThread(const TestJournalerOptions& options);
  ~JournalerThread();
  // Stops the thread; returns the journaler's first error, if any.
  std::optional<std::string> stop();
  // Why it could not start, if it could not.
  const std::optional<std::string>& open_error() const { return open_error_; }
  const TestJournaler* journaler() const { return journaler_.get(); }

 private:
  std::unique_ptr<TestJournaler> journaler_;
  std::atomic<bool> stop_{false};
  std::optional<std::string> open_error_;
  std::optional<std::string> run_error_;
  std::thread thread_;
};

}  // namespace shmbus::test
