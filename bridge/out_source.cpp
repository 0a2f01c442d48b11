#include "bridge/out_source.hpp"

#include <algorithm>
#include <chrono>

#include <fmt/format.h>

#include "ipc/channel_view.hpp"
#include "ipc/journal_link.hpp"
#include "journal/segment_files.hpp"

namespace shmbus::bridge {
namespace {

std::int64_t realtime_now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

OutSource::OutSource(Subscriber& subscriber, OutSourceOptions options)
    : subscriber_(subscriber), options_(std::move(options)), next_(options_.next) {
  if (next_ == 0) next_ = 1;
}

void OutSource::tell(const std::string& text) {
  if (options_.notice) options_.notice(text);
}

OutSource::Status OutSource::next(OutRecord& out) {
  for (;;) {
    if (filling_) {
      if (next_ < fill_end_ && fill_next(out)) return Status::record;
      filling_ = false;
      journal_refused_ = false;  // the next fill asks again (a journaler may have attached)
    }
    if (holding_) {
      holding_ = false;
      out = held_;
      out.payload = held_payload_;
      out.key = held_key_;
      next_ = out.sequence + 1;
      return Status::record;
    }

    const Subscriber::Cursor before = subscriber_.cursor();
    bool got = false;
    OutRecord polled;
    // One record per poll: its cursor is then exactly "after this record", and its payload stays
    // valid until the next poll, which comes only after the caller has used it.
    subscriber_.poll(
        [&](const Message& m) {
          got = true;
          polled.kind = RecordKind::data;
          polled.sequence = m.sequence;
          polled.count = 1;
          polled.time_ns = m.timestamp_ns;
          polled.payload = m.payload;
          polled.key = m.key;
          polled.message_type = m.message_type;
          polled.from = OutRecord::From::ring;
        },
        1);
    if (!got) {
      if (subscriber_.status() == PollStatus::evicted) {
        error_ = fmt::format("channel '{}': the bridge's subscriber was evicted",
                             subscriber_.info().name);
        return Status::failed;
      }
      if (subscriber_.status() == PollStatus::corrupt) {
        error_ = subscriber_.last_error();
        return Status::failed;
      }
      // A lapped drop or spill subscriber may spend a poll finding its place again: it moved,
      // so ask once more before calling it idle.
      if (subscriber_.cursor().position != before.position ||
          subscriber_.next_sequence() != before.next_sequence) {
        continue;
      }
      return Status::idle;
    }
    polled.release = subscriber_.cursor();
    if (polled.sequence < next_) continue;  // already in the stream
    if (polled.sequence == next_) {
      out = polled;
      next_ = polled.sequence + 1;
      return Status::record;
    }
    // Ahead of next_: keep it (copied: the fill polls nothing, but the caller may) and fill the
    // sequences before it first.
    held_ = polled;
    held_payload_.assign(polled.payload.begin(), polled.payload.end());
    held_key_.assign(polled.key.begin(), polled.key.end());
    before_held_ = before;
    holding_ = true;
    filling_ = true;
    fill_end_ = polled.sequence;
    journal_seek_ = true;
  }
}

void OutSource::rewind(std::uint64_t sequence) {
  if (sequence == 0 || sequence >= next_) return;
  if (!filling_) {
    fill_end_ = next_;  // the subscriber's next record, or the held one, begins there
    filling_ = true;
    if (!holding_) before_held_ = subscriber_.cursor();
  }
  next_ = sequence;
  journal_seek_ = true;
  journal_refused_ = false;
}

bool OutSource::open_journal(std::string& why) {
  std::string dir = options_.journal_dir;
  const ChannelInfo& info = subscriber_.info();
  if (dir.empty()) {
    auto view = detail::ChannelView::open(info.name);
    if (!view) {
      why = "the channel's journal directory cannot be read: " + view.error().message;
      return false;
    }
    auto last = detail::last_journal_dir(view->control());
    if (!last) {
      why = "the channel has no journal";
      return false;
    }
    dir = *last;
  }
  const auto incarnation = journal::journal_incarnation(dir);
  if (!incarnation || *incarnation != info.incarnation) {
    why = fmt::format("the journal in {} is not this channel incarnation's", dir);
    return false;
  }
  auto reader = journal::JournalReader::open(dir);
  if (!reader) {
    why = "the journal cannot be opened: " + reader.error().message;
    return false;
  }
  journal_.emplace(std::move(*reader));
  return true;
}

bool OutSource::fill_next(OutRecord& out) {
  std::string why;
  if (!journal_ && !journal_refused_ && !open_journal(why)) journal_refused_ = true;
  if (journal_) {
    if (journal_seek_) {
      journal_seek_ = false;
      if (auto r = journal_->refresh(); !r) {
        why = "the journal cannot be listed: " + r.error().message;
        journal_.reset();
      } else if (auto s = journal_->seek_sequence(next_); !s) {
        why = "the journal cannot be read: " + s.error().message;
        journal_.reset();
      }
    }
    journal::JournalRecord rec{};
    while (journal_ && why.empty()) {
      const journal::ReadStatus status = journal_->next(rec);
      if (status == journal::ReadStatus::end) {
        why = "the journal does not (yet) hold them";
        journal_seek_ = true;
        break;
      }
      if (status == journal::ReadStatus::damaged) {
        why = "the journal is damaged there: " + journal_->last_error();
        journal_seek_ = true;
        break;
      }
      if (rec.next_sequence() <= next_) continue;  // before what we want
      if (rec.sequence > next_) {
        // Retention removed them, or the journal began after them: what lies before this record
        // is lost; the record itself is read again after the GAP (seek).
        journal_seek_ = true;
        make_gap(out, std::min(rec.sequence, fill_end_), "the journal no longer holds them");
        return true;
      }
      out = OutRecord{};
      out.from = OutRecord::From::journal;
      out.release = before_held_;
      out.time_ns = rec.timestamp_ns;
      out.sequence = next_;
      if (rec.type == journal::RecordType::data) {
        out.kind = RecordKind::data;
        out.count = 1;
        out.payload = rec.payload;
        out.key = rec.key;
        out.message_type = rec.message_type;
        ++from_journal_;
      } else {
        // A gap the journaler saw itself: a GAP of the part we need.
        out.kind = RecordKind::gap;
        out.count = std::min(rec.next_sequence(), fill_end_) - next_;
        ++gaps_;
        gap_sequences_ += out.count;
        tell(fmt::format("channel '{}': sequences {}-{} were lost before the journaler saw them; "
                         "publishing a GAP record",
                         subscriber_.info().name, out.sequence, out.last_sequence()));
      }
      next_ = out.last_sequence() + 1;
      return true;
    }
  }
  if (why.empty()) why = "no journal";
  make_gap(out, fill_end_, why);
  return true;
}

void OutSource::make_gap(OutRecord& out, std::uint64_t end, const std::string& why) {
  out = OutRecord{};
  out.kind = RecordKind::gap;
  out.from = OutRecord::From::lost;
  out.sequence = next_;
  out.count = end - next_;
  out.time_ns = realtime_now_ns();
  out.release = before_held_;
  ++gaps_;
  gap_sequences_ += out.count;
  tell(fmt::format("channel '{}': sequences {}-{} are no longer in the ring and {}; publishing "
                   "a GAP record",
                   subscriber_.info().name, out.sequence, out.last_sequence(), why));
  next_ = end;
}

}  // namespace shmbus::bridge
