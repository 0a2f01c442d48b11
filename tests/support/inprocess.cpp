#include "tests/support/inprocess.hpp"

#include <cstring>
#include <iterator>

#include "ipc/channel.hpp"
#include "ipc/journal_link.hpp"
#include "ipc/process.hpp"
#include "journal/writer.hpp"

namespace shmbus::test {

ChannelOptions small_options() {
  ChannelOptions o;
  o.capacity = 64 << 10;
  o.max_message = 1024;
  o.open_timeout = std::chrono::milliseconds(500);
  return o;
}

SubscriberOptions sub_options(Policy policy, StartFrom start) {
  SubscriberOptions o;
  o.policy = policy;
  o.start = start;
  o.open_timeout = std::chrono::milliseconds(200);
  return o;
}

std::vector<std::byte> bytes_of(std::string_view text) {
  std::vector<std::byte> v(text.size());
  std::memcpy(v.data(), text.data(), text.size());
  return v;
}

std::vector<Received> receive_messages(Subscriber& sub, std::size_t want,
                                       std::chrono::milliseconds timeout) {
  std::vector<Received> got;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (got.size() < want && std::chrono::steady_clock::now() < deadline) {
    const std::size_t n = sub.poll(
        [&](const Message& m) {
          got.push_back(Received{
              m.sequence, m.lost_before,
              std::string(reinterpret_cast<const char*>(m.payload.data()), m.payload.size())});
        },
        want - got.size());
    if (n == 0) sub.wait(std::chrono::milliseconds(20));
  }
  return got;
}

std::vector<std::string> receive(Subscriber& sub, std::size_t want,
                                 std::chrono::milliseconds timeout) {
  std::vector<std::string> out;
  for (Received& r : receive_messages(sub, want, timeout)) out.push_back(std::move(r.payload));
  return out;
}

Result<std::unique_ptr<TestJournaler>> TestJournaler::open(const TestJournalerOptions& o) {
  std::unique_ptr<TestJournaler> j(new TestJournaler());
  SubscriberOptions so;
  so.policy = Policy::block;
  so.start = StartFrom::earliest;
  so.name = o.name;
  so.manual_release = true;
  so.liveness_timeout = o.liveness_timeout;
  so.open_timeout = std::chrono::milliseconds(2000);
  auto sub = Subscriber::open(o.channel, so);
  if (!sub) return tl::unexpected(sub.error());
  j->sub_.emplace(std::move(*sub));
  auto channel = detail::ChannelMapping::open(o.channel, false, so.open_timeout);
  if (!channel) return tl::unexpected(channel.error());
  j->channel_ = std::move(*channel);
  if (j->channel_->info().incarnation != j->sub_->info().incarnation) {
    return tl::unexpected(Error{ErrorCode::busy, "the channel was re-created while opening"});
  }
  if (auto claimed = detail::claim_journal(*j->channel_, o.dir); !claimed) {
    return tl::unexpected(claimed.error());
  }
  journal::WriterOptions wo;
  wo.dir = o.dir;
  wo.channel = o.channel;
  wo.incarnation = j->sub_->info().incarnation;
  wo.segment_bytes = o.segment_bytes;
  wo.buffer_bytes = 64 << 10;
  wo.buffers = 4;
  auto writer = journal::JournalWriter::open(wo);
  if (!writer) return tl::unexpected(writer.error());
  j->writer_ = std::make_unique<journal::JournalWriter>(std::move(*writer));
  detail::publish_journal_progress(*j->channel_,
                                   j->writer_->written_sequence(),
                                   j->writer_->durable_sequence());
  return j;
}

TestJournaler::~TestJournaler() {
  if (!sub_) return;
  if (writer_) {
    (void)writer_->flush();
    (void)writer_->drain();
    release_written();
  }
  detail::release_journal(*channel_);
}

std::uint64_t TestJournaler::written() const { return writer_->written_sequence(); }

void TestJournaler::release_written() {
  const std::uint64_t written = writer_->written_sequence();
  std::size_t done = 0;
  while (done < pending_.size() && pending_[done].last_sequence <= written) ++done;
  if (done > 0) {
    sub_->release(pending_[done - 1].cursor);
    released_position_.store(pending_[done - 1].cursor.position);
    pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(done));
  }
  detail::publish_journal_progress(*channel_, written,
                                   writer_->durable_sequence());
}

Result<std::size_t> TestJournaler::step() {
  if (writer_->full()) {
    if (auto r = writer_->reap(true); !r) return tl::unexpected(r.error());
  }
  std::size_t appended = 0;
  std::optional<Error> failed;
  // The writer answers `busy` while every buffer is in flight or a rolled segment's writes are
  // still completing: wait for completions and try again.
  auto with_retry = [&](auto&& append) -> Result<void> {
    for (;;) {
      auto r = append();
      if (r || r.error().code != ErrorCode::busy) return r;
      if (auto reaped = writer_->reap(true); !reaped) return reaped;
    }
  };
  sub_->poll([&](const Message& m) {
    if (failed) return;
    const std::uint64_t next = writer_->next_sequence();
    if (next != 0 && m.sequence < next) return;  // already journaled (a resumed subscriber)
    if (m.lost_before > 0) {
      auto gap = with_retry([&] {
        return writer_->append_gap(m.sequence - m.lost_before, m.lost_before,
                                   detail::realtime_ns());
      });
      if (!gap) failed = gap.error();
    }
    auto r = with_retry([&] {
      return writer_->append_tagged(m.sequence, m.timestamp_ns, m.key, m.message_type, m.payload);
    });
    if (!r) {
      failed = r.error();
      return;
    }
    ++appended;
  });
  if (failed) return tl::unexpected(*failed);
  if (sub_->status() != PollStatus::ok) {
    return tl::unexpected(Error{ErrorCode::corrupt, "journaler poll: " + sub_->last_error()});
  }
  const Subscriber::Cursor c = sub_->cursor();
  if (pending_.empty() ? c.position != released_position_.load()
                       : c.position != pending_.back().cursor.position) {
    pending_.push_back(Pending{c.next_sequence - 1, c});
  }
  if (appended > 0) {
    if (auto r = writer_->flush(); !r) return tl::unexpected(r.error());
  }
  if (auto r = writer_->reap(false); !r) return tl::unexpected(r.error());
  release_written();
  return appended;
}

std::optional<std::string> TestJournaler::run(const std::atomic<bool>& stop) {
  while (!stop.load()) {
    auto n = step();
    if (!n) return n.error().message;
    if (*n == 0) sub_->wait(std::chrono::microseconds(500), std::chrono::microseconds(20));
  }
  return std::nullopt;
}

JournalerThread::JournalerThread(const TestJournalerOptions& options) {
  auto j = TestJournaler::open(options);
  if (!j) {
    open_error_ = j.error().message;
    return;
  }
  journaler_ = std::move(*j);
  thread_ = std::thread([this] { run_error_ = journaler_->run(stop_); });
}

JournalerThread::~JournalerThread() { (void)stop(); }

std::optional<std::string> JournalerThread::stop() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
  journaler_.reset();
  return run_error_;
}

}  // namespace shmbus::test

namespace shmbus {

void PrintTo(Policy policy, std::ostream* os) { *os << to_string(policy); }

void PrintTo(PollStatus status, std::ostream* os) {
  switch (status) {
    case PollStatus::ok: *os << "ok"; return;
    case PollStatus::corrupt: *os << "corrupt"; return;
    case PollStatus::evicted: *os << "evicted"; return;
    case PollStatus::journal_unavailable: *os << "journal_unavailable"; return;
  }
  *os << "PollStatus(" << static_cast<int>(status) << ")";
}

void PrintTo(PublishStatus status, std::ostream* os) { *os << to_string(status); }

void PrintTo(ErrorCode code, std::ostream* os) {
  static const char* const names[] = {"invalid_argument", "not_found",        "permission_denied",
                                      "no_space",         "version_mismatch", "corrupt",
                                      "busy",             "timed_out",        "system"};
  const auto i = static_cast<std::size_t>(code);
  if (i < std::size(names)) {
    *os << names[i];
  } else {
    *os << "ErrorCode(" << i << ")";
  }
}

}  // namespace shmbus
