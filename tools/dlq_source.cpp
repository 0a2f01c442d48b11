// Reading a dead-letter channel for `shmbus dlq`: its journal, then its ring (dlq_source.hpp).
#include "tools/dlq_source.hpp"

#include <atomic>
#include <chrono>
#include <exception>
#include <new>
#include <optional>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "ipc/channel_view.hpp"
#include "ipc/journal_link.hpp"
#include "shmbus/journal_reader.hpp"
#include "shmbus/shmbus.hpp"
#include "tools/truncation.hpp"

namespace shmbus::tools {
namespace {

// How long the ring read waits for a record claimed before the read began but not yet committed
// (a dead letter being written right now), in all, before it reports it as missing.
constexpr auto kDlqCommitWait = std::chrono::milliseconds(1000);
constexpr std::size_t kDlqBatch = 64;

// The journal's records up to `head`, handed over in order; `last` ends as the last sequence it
// held (gap records included), 0 if none.
Result<void> read_dlq_journal(const std::string& dir, std::uint64_t head, DlqReadSummary& summary,
                          std::uint64_t& last, bool& stopped,
                          const std::function<bool(const DlqRecord&)>& on_record) {
  auto reader = journal::JournalReader::open(dir);
  if (!reader) return tl::unexpected(reader.error());
  journal::JournalRecord r;
  for (;;) {
    const journal::ReadStatus st = reader->next(r);
    if (st == journal::ReadStatus::end) return {};
    if (st == journal::ReadStatus::damaged) {
      summary.damaged = true;
      summary.warnings.push_back(
          fmt::format("journal {}: {} (skipped)", dir, reader->last_error()));
      if (!reader->skip_damage()) return {};
      continue;
    }
    if (r.sequence > head) return {};  // published after the read began: the ring's part
    if (r.type == journal::RecordType::gap) {
      summary.warnings.push_back(fmt::format(
          "dead-letter sequences {}..{} were lost before the journaler saw them", r.sequence,
          r.sequence + r.gap_count - 1));
      last = r.sequence + r.gap_count - 1;
      continue;
    }
    last = r.sequence;
    if (!on_record(DlqRecord{r.sequence, r.timestamp_ns, r.payload, true})) {
      stopped = true;
      return {};
    }
  }
}

// A copy of one ring record: poll's views last only until the next poll, and the handler must not
// throw, so records are copied out and handed over between polls.
struct DlqCopied {
  std::uint64_t sequence = 0;
  std::int64_t timestamp_ns = 0;
  std::vector<std::byte> bytes;
};

}  // namespace

Result<DlqReadSummary> read_dlq_records(const DlqSourceOptions& o,
                                        const std::function<bool(const DlqRecord&)>& on_record) {
  const detail::MappingGuard guard;  // a truncated channel is an error, not a SIGBUS
  auto view = read_guarded([&] { return detail::ChannelView::open(o.channel); });
  if (!view) return tl::unexpected(view.error());
  DlqReadSummary summary;
  // relaxed: only a bound on how far to read; the records themselves are read by a subscriber,
  // whose own loads order them.
  const std::uint64_t next = view->ring().claimed_sequence(std::memory_order_relaxed);
  summary.head_sequence = next > 0 ? next - 1 : 0;
  const std::uint64_t head = summary.head_sequence;

  // The journal: the one named, else the channel's current or most recent journaler's.
  std::uint64_t journal_last = 0;
  bool stopped = false;
  std::string dir = o.journal_dir;
  const bool named = !dir.empty();
  if (!named) {
    if (auto link = detail::find_journal(view->control())) {
      dir = link->dir;
    } else if (auto last = detail::last_journal_dir(view->control())) {
      dir = *last;
    }
  }
  if (!dir.empty()) {
    auto read = read_dlq_journal(dir, head, summary, journal_last, stopped, on_record);
    if (!read) {
      if (named) return tl::unexpected(read.error());
      summary.warnings.push_back(fmt::format(
          "channel '{}' was recorded into {}, which cannot be read ({}): listing the ring alone",
          o.channel, dir, read.error().message));
    } else {
      summary.journal_dir = dir;
    }
  }
  if (stopped || head == 0 || journal_last >= head) return summary;

  // The ring, from the record after the journal's last on (or its earliest).
  SubscriberOptions so;
  so.policy = Policy::drop;  // never slows the producers; needs read access only
  so.open_timeout = std::chrono::milliseconds(0);
  if (journal_last > 0) {
    so.start = StartFrom::sequence;
    so.start_sequence = journal_last + 1;
  } else {
    so.start = StartFrom::earliest;
  }
  auto sub = read_guarded([&] { return Subscriber::open(o.channel, so); });
  if (!sub) return tl::unexpected(sub.error());

  std::uint64_t expected = journal_last + 1;  // the next sequence in order
  std::vector<DlqCopied> batch;
  batch.reserve(kDlqBatch);
  bool copy_failed = false;
  auto copy = [&](const Message& m) noexcept {
    try {
      batch.push_back(DlqCopied{m.sequence, m.timestamp_ns, {m.payload.begin(), m.payload.end()}});
    } catch (...) {
      copy_failed = true;
    }
  };
  auto waited = std::chrono::nanoseconds(0);
  std::string reported_corruption;  // each corruption once, not once per poll
  while (expected <= head) {
    batch.clear();
    sub->poll(copy, kDlqBatch);
    if (copy_failed) throw std::bad_alloc();
    if (auto truncation = detail::MappingGuard::take()) {
      return tl::unexpected(Error{ErrorCode::corrupt, detail::describe(*truncation)});
    }
    if (sub->status() == PollStatus::corrupt && sub->last_error() != reported_corruption) {
      reported_corruption = sub->last_error();
      summary.warnings.push_back(fmt::format("channel '{}': {}", o.channel, reported_corruption));
    }
    if (batch.empty()) {
      if (waited >= kDlqCommitWait) break;
      const auto slice = std::chrono::milliseconds(50);
      sub->wait(slice);
      waited += slice;
      continue;
    }
    for (const DlqCopied& c : batch) {
      if (c.sequence > head) {
        expected = head + 1;
        break;
      }
      if (c.sequence > expected) {
        summary.warnings.push_back(fmt::format(
            "dead-letter sequences {}..{} are no longer in the ring{}", expected,
            c.sequence - 1,
            summary.journal_dir.empty()
                ? fmt::format(" and channel '{}' has no journal to read them from", o.channel)
                : fmt::format(" nor in the journal {}", summary.journal_dir)));
      }
      expected = c.sequence + 1;
      if (!on_record(DlqRecord{c.sequence, c.timestamp_ns, c.bytes, false})) return summary;
    }
  }
  if (expected <= head) {
    summary.warnings.push_back(fmt::format(
        "dead-letter sequences {}..{} were claimed but not committed within {} ms", expected,
        head, kDlqCommitWait.count()));
  }
  return summary;
}

}  // namespace shmbus::tools
