// The journaler (include/shmbus/journaler.hpp): a manual-release subscriber whose records go to a
// journal::JournalWriter, releasing ring space only behind what the files hold.
#include "shmbus/journaler.hpp"

#include <array>
#include <filesystem>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "ipc/channel.hpp"
#include "ipc/journal_link.hpp"
#include "ipc/process.hpp"
#include "journal/segment_files.hpp"
#include "journal/writer.hpp"

namespace shmbus {

using journal::JournalWriter;

struct Journaler::State {
  JournalerOptions options;
  // The channel as the journaler mapped it: the journal link (claim, progress, release) lives in
  // its control segment. The subscriber maps the same channel; open() checks it is the same
  // incarnation.
  std::shared_ptr<detail::ChannelMapping> channel;
  std::optional<Subscriber> sub;
  std::optional<JournalWriter> writer;
  std::string absolute_dir;
  std::uint64_t max_record_bytes = 0;  // padded size of the channel's largest message

  // The sequence the journal expects next (0: empty journal, anything may come first).
  std::uint64_t expected = 0;
  // Ring space is released only behind written records: after each poll batch the journaler notes
  // the batch's last sequence and the subscriber's cursor after it, and releases the cursor once
  // the writer reports that sequence written. A full queue merges into its newest entry, which only
  // makes releases coarser.
  struct Mark {
    std::uint64_t sequence;
    Subscriber::Cursor cursor;
  };
  std::array<Mark, 256> marks{};
  std::size_t marks_head = 0, marks_size = 0;
  std::uint64_t batch_last = 0;  // last sequence appended by the current poll
  // Open during a poll: the messages that simply continue the journal are laid into the write
  // buffer through it (journal/record_run.hpp); nothing else touches the writer meanwhile.
  journal::RecordRun run;

  std::uint64_t published_written = 0, published_durable = 0;
  JournalerStats stats;
  std::string last_error;
  bool append_failed = false;
  bool told_blocked = false;  // on_blocked_wait was called for the current episode
  bool claimed = false;       // this journaler holds the channel's journal link
  bool abandoned = false;     // abandon(): leave everything as a crash would
  std::int64_t unflushed_since = 0;  // monotonic ns of the first append not yet flushed (0: none)

  // Ring space is released once records are written, not once they are synced: holding the ring
  // for an fsync interval would gate the producers on the disk's flush latency. A process crash
  // loses nothing written; a power loss (or a failed fsync whose pages the kernel dropped) can
  // lose what was written but not synced, and then the restarted journaler finds its files end
  // before its subscriber's position and writes a gap record for the difference: a counted loss,
  // never a silent one. Producers that need more wait for durable_sequence (wait_durable).
  std::uint64_t releasable() const noexcept { return writer->written_sequence(); }

  void push_mark(std::uint64_t sequence, const Subscriber::Cursor& cursor) noexcept {
    if (marks_size == marks.size()) {
      marks[(marks_head + marks_size - 1) % marks.size()] = Mark{sequence, cursor};
      return;
    }
    marks[(marks_head + marks_size) % marks.size()] = Mark{sequence, cursor};
    ++marks_size;
  }

  // Releases ring space behind what is written and tells the channel how far the journal got.
  // Also runs inside a poll, while an append waits for a buffer: the cursors it releases belong
  // to earlier batches, and release() may be called from the polling thread at any time.
  void release_written() noexcept {
    const std::uint64_t done = releasable();
    const Mark* last = nullptr;
    while (marks_size > 0 && marks[marks_head].sequence <= done) {
      last = &marks[marks_head];
      marks_head = (marks_head + 1) % marks.size();
      --marks_size;
    }
    if (last != nullptr) sub->release(last->cursor);
    const std::uint64_t written = writer->written_sequence();
    const std::uint64_t durable = writer->durable_sequence();
    if (written != published_written || durable != published_durable) {
      published_written = written;
      published_durable = durable;
      detail::publish_journal_progress(*channel, written, durable);
    }
  }

  // Appends one message: into the open run when it continues it (the common case: an untagged
  // message, the next sequence, room in the buffer), otherwise on its own (tagged messages always:
  // the run lays plain records only), after which a new run begins.
  void on_message(const Message& m) noexcept {
    if (m.message_type == 0 && m.key.empty() && run.append(m.sequence, m.timestamp_ns, m.payload))
        [[likely]] {
      return;
    }
    end_run();
    append_one(m);
    if (!append_failed) run = writer->begin_run();
  }

  // Hands the run's records to the writer's bookkeeping and counts them.
  void end_run() noexcept {
    if (run.records() > 0) {
      stats.recorded += run.records();
      expected = run.next_sequence();
      batch_last = expected - 1;
    }
    writer->end_run(run);
  }

  // Appends one message, with a gap record first for whatever is missing before it.
  void append_one(const Message& m) noexcept {
    if (append_failed) return;
    if (expected != 0 && m.sequence < expected) {
      ++stats.duplicates;  // at-least-once resume: the journal already has it
      return;
    }
    // A new journal simply starts at the first record it gets; after that, whatever is missing
    // before a record is written as a gap record.
    const std::uint64_t gap_first = expected != 0 ? expected : m.sequence;
    if (m.sequence > gap_first) {
      const std::uint64_t count = m.sequence - gap_first;
      const std::int64_t now = detail::realtime_ns();
      if (auto r = with_room([&] { return writer->append_gap(gap_first, count, now); }); !r) {
        fail_append(r.error());
        return;
      }
      ++stats.gap_records;
      stats.lost += count;
    }
    if (auto r = with_room([&] {
          return writer->append_tagged(m.sequence, m.timestamp_ns, m.key, m.message_type,
                                       m.payload);
        });
        !r) {
      fail_append(r.error());
      return;
    }
    ++stats.recorded;
    expected = m.sequence + 1;
    batch_last = m.sequence;
  }

  // Runs an append; while every buffer is in flight (busy), waits for a write to complete and
  // tries again; while writes fail, waits for them to succeed (if the options say so). Waiting
  // inside poll is fine: the records are not released, nobody overwrites them.
  template <class Append>
  Result<void> with_room(const Append& append) noexcept {
    for (;;) {
      Result<void> r = append();
      if (r) return r;
      const bool waiting_for_writes = r.error().code == ErrorCode::busy;
      const bool waiting_for_space = writer->blocked() && options.wait_while_blocked;
      if (!waiting_for_writes && !waiting_for_space) return r;
      if (waiting_for_space && options.should_stop && options.should_stop()) return r;
      if (waiting_for_space && !told_blocked && options.on_blocked_wait) {
        told_blocked = true;
        options.on_blocked_wait(writer->last_error());
      }
      if (auto reaped = writer->reap(true); !reaped) return reaped;  // waits for an event
      // What the wait completed frees ring space now, not after this poll: the producers are
      // most likely waiting for it (the journaler waits here because the disk is behind).
      release_written();
      if (!writer->blocked()) told_blocked = false;
    }
  }

  void fail_append(const Error& e) noexcept {
    // step() sized the batch to what the writer can take, so this is not back-pressure but a
    // broken writer. The records are not released, so a restart writes them.
    append_failed = true;
    try {
      last_error = fmt::format("cannot append to the journal: {}", e.message);
    } catch (...) {
    }
  }

  State() = default;
  State(const State&) = delete;
  State& operator=(const State&) = delete;
  // A journaler that holds the journal link drains what it appended (bounded), releases the ring
  // behind it and gives the link up, on every path: a failed open, a failed reopen, a move over
  // it, or its end. One that never claimed the link leaves it alone (another journaler in this
  // process may hold it).
  ~State() {
    if (!claimed || abandoned) return;
    if (writer) {
      (void)writer->drain(std::chrono::milliseconds(2000));
      if (sub) release_written();
    }
    detail::release_journal(*channel);
  }

  // How many records the next poll may take without the writer running out of buffers.
  std::size_t poll_budget() const noexcept { return writer->full() ? 0 : 256; }

  Result<void> reopen_after_eviction() {
    // Evicted (we were judged dead) and the ring moved on: the same name resumes the slot, and
    // what the ring no longer holds arrives as lost_before, which becomes a gap record.
    sub.reset();
    auto reopened = open_subscriber(options, expected);
    if (!reopened) return tl::unexpected(reopened.error());
    if (auto same = check_same_channel(*reopened, "reopened it after an eviction"); !same) {
      return same;
    }
    sub.emplace(std::move(*reopened));
    marks_size = 0;
    return {};
  }

  // The subscriber must read the channel the journaler mapped: not a re-creation of its name.
  Result<void> check_same_channel(const Subscriber& subscriber, const char* while_it) const {
    if (subscriber.info().incarnation == channel->info().incarnation) return {};
    return tl::unexpected(Error{
        ErrorCode::busy, fmt::format("channel '{}' was re-created while the journaler {}; start it "
                                     "again",
                                     options.channel, while_it)});
  }

  static Result<Subscriber> open_subscriber(const JournalerOptions& o, std::uint64_t expected) {
    SubscriberOptions so;
    so.policy = o.lossy ? Policy::drop : Policy::block;
    so.name = o.name;
    so.manual_release = true;
    so.liveness_timeout = o.liveness_timeout;
    so.open_timeout = o.open_timeout;
    if (expected != 0) {
      so.start = StartFrom::sequence;  // a new slot starts where the journal ends
      so.start_sequence = expected;
    } else {
      so.start = o.start;
    }
    return Subscriber::open(o.channel, so);
  }
};

Journaler::Journaler() : state_(std::make_unique<State>()) {}
Journaler::Journaler(Journaler&&) noexcept = default;
Journaler& Journaler::operator=(Journaler&&) noexcept = default;

Journaler::~Journaler() = default;

Result<Journaler> Journaler::open(const JournalerOptions& options,
                                  journal::RecoveryReport* report) {
  Journaler j;
  State& s = *j.state_;
  s.options = options;
  std::error_code ec;
  std::filesystem::create_directories(options.writer.dir, ec);  // the writer reports failures
  s.absolute_dir = std::filesystem::absolute(options.writer.dir, ec).lexically_normal().string();
  if (ec) s.absolute_dir = options.writer.dir;

  // The channel's identity first (its incarnation goes into segment headers), then the writer,
  // which takes the directory's lock and says where the journal continues, then the subscriber,
  // which starts there.
  // Kept for the journal link in the control segment; the subscriber reads the ring through its
  // own mapping, so this one is not prefaulted.
  auto channel = detail::ChannelMapping::open(options.channel, false, options.open_timeout,
                                              /*prefault_ring=*/false);
  if (!channel) return tl::unexpected(channel.error());
  s.channel = std::move(*channel);
  const ChannelInfo& info = s.channel->info();
  const std::optional<std::uint64_t> stored = journal::journal_incarnation(options.writer.dir);
  if (stored && *stored != 0 && *stored != info.incarnation) {
    return tl::unexpected(Error{
        ErrorCode::invalid_argument,
        fmt::format("journal {} was written for another incarnation of channel '{}' ({:016x}; the "
                    "channel was deleted and re-created since, now {:016x}): its sequences "
                    "started again at 1, so record it into a new directory",
                    s.absolute_dir, options.channel, *stored, info.incarnation)});
  }
  journal::WriterOptions wo = options.writer;
  wo.channel = options.channel;
  wo.incarnation = info.incarnation;
  auto writer = JournalWriter::open(wo, report);
  if (!writer) return tl::unexpected(writer.error());
  s.writer.emplace(std::move(*writer));
  s.expected = s.writer->next_sequence();
  s.max_record_bytes = journal::padded_record_size(info.max_message);

  auto sub = State::open_subscriber(options, s.expected);
  if (!sub) return tl::unexpected(sub.error());
  s.sub.emplace(std::move(*sub));
  if (auto same = s.check_same_channel(*s.sub, "opened it"); !same) {
    return tl::unexpected(same.error());
  }
  if (auto claimed = detail::claim_journal(*s.channel, s.absolute_dir); !claimed) {
    return tl::unexpected(claimed.error());
  }
  s.claimed = true;
  s.release_written();
  return j;
}

Result<std::size_t> Journaler::step(std::chrono::milliseconds idle_wait) {
  State& s = *state_;
  if (auto r = s.writer->reap(false); !r) return tl::unexpected(r.error());
  s.release_written();

  const std::size_t budget = s.writer->blocked() ? 0 : s.poll_budget();
  std::size_t appended = 0;
  if (budget > 0) {
    const std::uint64_t before = s.stats.recorded;
    s.batch_last = 0;
    s.run = s.writer->begin_run();
    s.sub->poll([&s](const Message& m) { s.on_message(m); }, budget);
    s.end_run();
    appended = s.stats.recorded - before;
    if (s.append_failed) return tl::unexpected(Error{ErrorCode::system, s.last_error});
    if (s.batch_last != 0) s.push_mark(s.batch_last, s.sub->cursor());
    if (s.sub->status() == PollStatus::evicted) {
      if (auto r = s.reopen_after_eviction(); !r) return tl::unexpected(r.error());
    } else if (s.sub->status() == PollStatus::corrupt) {
      s.last_error = s.sub->last_error();  // skipped ahead; the loss arrives as a gap record
    }
  }
  const std::int64_t now = detail::monotonic_ns();
  if (appended > 0) {
    if (s.unflushed_since == 0) s.unflushed_since = now;
    return appended;
  }

  // Nothing new: hand the partial buffer to the kernel once it has waited flush_interval (so the
  // journal lags by at most that much, and a trickle of messages makes a few writes a second, not
  // one per nap: every write is an interrupt somewhere), then nap.
  if (s.unflushed_since != 0 &&
      now - s.unflushed_since >= std::chrono::nanoseconds(s.options.flush_interval).count()) {
    if (auto r = s.writer->flush(); !r) return tl::unexpected(r.error());
    s.unflushed_since = 0;
  }
  if (s.writer->blocked()) {
    s.last_error = s.writer->last_error();
    std::this_thread::sleep_for(std::min(idle_wait, s.options.writer.retry_interval));
  } else if (idle_wait.count() > 0) {
    std::this_thread::sleep_for(s.options.idle_nap);
  }
  if (auto r = s.writer->reap(false); !r) return tl::unexpected(r.error());
  s.release_written();
  return std::size_t{0};
}

Result<void> Journaler::run(const std::atomic<bool>& stop) {
  // relaxed: a request flag; nothing else is published through it.
  while (!stop.load(std::memory_order_relaxed)) {
    auto r = step();
    if (!r) return tl::unexpected(r.error());
  }
  return drain();
}

Result<void> Journaler::drain(std::chrono::milliseconds timeout) {
  State& s = *state_;
  auto r = s.writer->drain(timeout);
  s.release_written();
  return r;
}

void Journaler::abandon() noexcept {
  State& s = *state_;
  s.abandoned = true;
  // The subscriber is moved into an object that is never destroyed (not even at exit: a static
  // pointer, not a static object), so that its slot is never detached: it keeps gating at the last
  // released cursor until its process is judged dead. The pointer keeps it reachable, so leak
  // checkers do not count it.
  static auto* const abandoned = new std::vector<std::unique_ptr<Subscriber>>();
  if (s.sub) {
    try {
      abandoned->push_back(std::make_unique<Subscriber>(std::move(*s.sub)));
    } catch (...) {
    }
  }
}

JournalerStats Journaler::stats() const noexcept {
  JournalerStats st = state_->stats;
  st.written_sequence = state_->writer->written_sequence();
  st.durable_sequence = state_->writer->durable_sequence();
  st.blocked = state_->writer->blocked();
  return st;
}

const std::string& Journaler::last_error() const noexcept {
  return state_->writer->blocked() ? state_->writer->last_error() : state_->last_error;
}

}  // namespace shmbus
