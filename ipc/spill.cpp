// The spill policy's slow path. A spill subscriber reads the ring as a drop subscriber does
// (read-only mapping, copy-then-validate, never gating the producers). When the producers lap it,
// it does not skip ahead: it continues from the journal files at the sequence it expects next,
// and goes back to the ring as soon as the ring holds that sequence again:
//
//   ring ──lapped──▶ journal catch-up ──the ring holds the next sequence (walk to it)──▶ ring
//                          │
//                          ├── retention removed it: continue at the journal's earliest sequence,
//                          │   the removed sequences (only those) counted lost
//                          └── the journal cannot provide it (journaler gone, damage)
//                              ──▶ drop fallback: skip to the ring's earliest, loss counted
//
// Every sequence is delivered once, in order: the journal is read only up to the sequence the
// journaler reports written (ControlHeader::journal_written), and the rejoin walks the ring from a
// boundary up to exactly the next expected sequence, discarding what the journal already gave.
//
// Nothing here is on the hot path: it runs only while catching up, and it opens and reads files,
// reads /proc and allocates. The ring path (Subscriber::poll in shmbus/subscriber.hpp) only
// tests PollState::catching_up.
#include <fmt/format.h>

#include <algorithm>
#include <string>
#include <utility>

#include "core/ring.hpp"
#include "ipc/journal_link.hpp"
#include "ipc/subscriber_state.hpp"

namespace shmbus::detail {
namespace {

// How often a catch-up that waits for the journaler looks at /proc to see whether it still lives.
constexpr std::int64_t kAliveCheckIntervalNs = 20'000'000;

// Why the journal cannot go on; the caller falls back to the ring (spill_fallback) with this text.
tl::unexpected<Error> fail(std::string why) {
  return tl::unexpected(Error{ErrorCode::system, std::move(why)});
}

}  // namespace

void SubscriberSlowState::start_catch_up(PollState& poll) noexcept {
  SpillState& sp = *spill;
  // Losses the ring reader counted (abandoned claims) but has not reported yet go with the
  // journal's next message.
  sp.pending_lost += poll.reader.pending_lost();
  poll.reader = core::RingReader(channel->ring(), poll.reader.position(), poll.reader.next_sequence());
  sp.positioned = false;
  sp.refreshed = false;
  poll.catching_up = true;
}

bool SubscriberSlowState::journal_ready(const PollState& poll) const noexcept {
  // acquire: pairs with the journaler's release in publish_journal_progress.
  return channel->channel_control().journal_written.load(std::memory_order_acquire) >=
         poll.reader.next_sequence();
}

bool SubscriberSlowState::catch_up_ready(PollState& poll) noexcept {
  return journal_ready(poll) || !journaler_alive() || try_rejoin(poll, false);
}

bool SubscriberSlowState::journaler_alive() noexcept {
  SpillState& sp = *spill;
  auto& ctl = channel->channel_control();
  // acquire: a settled owner word comes with its directory (see claim_journal).
  const std::uint64_t owner = ctl.journal_owner.load(std::memory_order_acquire);
  if (owner == 0) return sp.journaler_alive = false;
  if ((owner & kJournalClaiming) != 0) return true;  // one is attaching; it will report
  const std::int64_t now = monotonic_ns();
  if (owner != sp.owner_word) {
    // Another journaler attached (a restart): it may record elsewhere.
    const auto link = find_journal(*channel);
    if (!link) return sp.journaler_alive = false;
    if (link->dir != sp.dir) {
      sp.journal.reset();
      sp.dir = link->dir;
      sp.positioned = false;
    }
    sp.owner_word = pack_process(link->owner);
    sp.next_alive_check_ns = now + kAliveCheckIntervalNs;
    return sp.journaler_alive = link->alive;
  }
  if (now >= sp.next_alive_check_ns) {
    sp.journaler_alive = process_alive(unpack_process(owner));
    sp.next_alive_check_ns = now + kAliveCheckIntervalNs;
  }
  return sp.journaler_alive;
}

bool SubscriberSlowState::try_rejoin(PollState& poll, bool need_margin) noexcept {
  const core::RingRef& ring = channel->ring();
  const std::uint64_t expected = poll.reader.next_sequence();
  const core::TailWord tail = ring.load_tail();
  if (expected > tail.next_sequence) return false;  // not published yet (garbage, really)
  // A boundary at or before the record carrying `expected`, still in the ring.
  const core::TailWord b = core::boundary_for_sequence(ring, expected, 0);
  if (b.next_sequence > expected) return false;  // overwritten: only the journal has it
  // Read from shared memory: re-enter only at a genuine place with at most a lap's records to
  // walk (a garbage claim word would make the walk below run for as long as it claims).
  if (!core::plausible_place(b) ||
      expected - b.next_sequence > ring.capacity / core::kFrameAlignment) {
    return false;
  }
  // With the journal able to go on, rejoin only with an eighth of a lap to spare, so that the
  // producers do not lap us again at once.
  if (need_margin && tail.position + ring.capacity / 8 > b.position + ring.capacity) return false;
  // Walk from the boundary to exactly `expected`, discarding what the journal delivered already
  // (and the losses it reported already). poll_copy checks every record and the lap.
  core::RingReader walker(ring, b.position, b.next_sequence);
  auto discard = [](const core::RecordView&) noexcept {};
  while (walker.next_sequence() < expected) {
    const std::uint64_t before = walker.position();
    std::size_t n = 0;
    const core::ReadState st =
        walker.poll_copy(discard, static_cast<std::size_t>(expected - walker.next_sequence()),
                         poll.copy_buffer, poll.copy_buffer_size, n);
    if (st == core::ReadState::lapped || st == core::ReadState::corrupt) return false;
    if (walker.position() == before) return false;  // a claim not committed yet: later
  }
  SpillState& sp = *spill;
  poll.reader = core::RingReader(ring, walker.position(), expected);
  poll.reader.note_lost(sp.pending_lost);
  sp.pending_lost = 0;
  sp.positioned = false;
  poll.catching_up = false;
  note_progress(poll);
  return true;
}

void SubscriberSlowState::spill_fallback(PollState& poll, const std::string& why) noexcept {
  const std::uint64_t expected = poll.reader.next_sequence();
  if (try_rejoin(poll, false)) return;  // the ring still has it after all: nothing lost
  SpillState& sp = *spill;
  const core::RingRef& ring = channel->ring();
  core::TailWord b = core::earliest_retained(ring, ring.capacity / 8);
  if (b.next_sequence < expected) b = ring.load_tail();  // never backwards
  if (!core::plausible_place(b) || b.next_sequence < expected) {
    // The ring's claim word is garbage: the jump to it would be counted as a loss the ring never
    // had. Report the ring corrupt and keep trying the journal.
    refuse_resync(poll, b, fmt::format("catching up from the journal ({})", why));
    return;
  }
  poll.reader = core::RingReader(ring, b.position, b.next_sequence);
  // What lies between is lost, reported by the next message. Bounded by plausible_place(b): the
  // ring cannot have held more sequences than its claimed bytes.
  poll.reader.note_lost(sp.pending_lost + (b.next_sequence - expected));
  sp.pending_lost = 0;
  sp.positioned = false;
  poll.catching_up = false;
  poll.status = PollStatus::journal_unavailable;
  const std::uint64_t skipped = b.next_sequence > expected ? b.next_sequence - expected : 0;
  last_error = fmt::format(
      "channel '{}': spill subscriber at sequence {}: {}; continuing in the ring at sequence {}, "
      "{} sequences lost",
      channel->info().name, expected, why, poll.reader.next_sequence(), skipped);
  note_progress(poll);
}

// True when the journal, listed again, no longer begins at or before `expected`: retention removed
// the oldest segments (or the journal started after it), so the journal's earliest sequence is
// the closest it can resume at.
bool SpillState::journal_begins_after(std::uint64_t expected) {
  if (!journal->refresh()) return false;
  refreshed = true;
  return journal->first_sequence() > expected;
}

Result<std::uint64_t> SpillState::position_at(const ChannelMapping& channel,
                                              std::uint64_t expected) {
  if (!journal) {
    if (dir.empty()) {
      const auto link = find_journal(channel);
      if (!link) return fail("no journaler is attached to the channel any more");
      dir = link->dir;
      owner_word = pack_process(link->owner);
    }
    auto opened = journal::JournalReader::open(dir);
    if (!opened) return fail(fmt::format("cannot open the journal: {}", opened.error().message));
    journal.emplace(std::move(*opened));
    positioned = false;
  }
  if (positioned) return expected;
  if (auto listed = journal->refresh(); !listed) {
    return fail(fmt::format("cannot list the journal: {}", listed.error().message));
  }
  if (auto sought = journal->seek_sequence(expected); !sought) {
    return fail(fmt::format("cannot find sequence {} in the journal: {}", expected,
                            sought.error().message));
  }
  positioned = true;
  refreshed = true;  // just listed
  // Before the first retained sequence the seek lands on the journal's first record.
  return std::max(expected, journal->first_sequence());
}

Result<bool> SpillState::read_next(journal::JournalRecord& record, std::uint64_t expected,
                                   std::uint64_t written) {
  const journal::ReadStatus st = journal->next(record);
  if (st == journal::ReadStatus::end) {
    // The reader reads up to the sizes it listed; the journaler may have appended since.
    if (refreshed) {
      return fail(fmt::format(
          "the journal in {} ends before sequence {} although its journaler reported sequences "
          "up to {} written",
          dir, expected, written));
    }
    refreshed = true;
    if (auto listed = journal->refresh(); !listed) {
      return fail(fmt::format("cannot list the journal: {}", listed.error().message));
    }
    return false;
  }
  refreshed = false;
  if (st == journal::ReadStatus::damaged) {
    // Retention may have removed the segment being read: position again, at the earliest.
    if (journal_begins_after(expected)) {
      positioned = false;
      return false;
    }
    return fail(fmt::format("the journal is damaged: {}", journal->last_error()));
  }
  if (record.sequence > expected) {
    if (journal_begins_after(expected)) {
      positioned = false;
      return false;
    }
    return fail(fmt::format(
        "the journal does not hold sequences {}..{} (removed by retention, or never written)",
        expected, record.sequence - 1));
  }
  return true;
}

std::size_t SubscriberSlowState::poll_journal(PollState& poll, MessageSink sink,
                                              std::size_t max_messages) noexcept {
  // Back to the ring as soon as it holds our next sequence with room to spare.
  if (try_rejoin(poll, true)) return 0;
  SpillState& sp = *spill;
  const core::RingRef& ring = channel->ring();
  auto& ctl = channel->channel_control();
  std::uint64_t expected = poll.reader.next_sequence();
  // The ring reader keeps the expected sequence (next_sequence(), cursor(), the slot); its
  // position stays where the ring lapped us until we rejoin.
  auto sync = [&] { poll.reader = core::RingReader(ring, poll.reader.position(), expected); };
  std::string failure;
  std::size_t handed = 0;
  // acquire: pairs with the journaler's release in publish_journal_progress: the files hold
  // every record up to it, so reading no further never meets a write still in flight.
  std::uint64_t written = ctl.journal_written.load(std::memory_order_acquire);
  while (handed < max_messages) {
    if (expected > written) {
      // The journal has nothing more yet. The ring may hold it (the journaler gates the
      // producers, so what it has not written is normally still there); else wait for the
      // journaler, unless it is gone.
      sync();
      if (try_rejoin(poll, false)) break;
      // acquire: as above.
      written = ctl.journal_written.load(std::memory_order_acquire);
      if (expected <= written) continue;
      if (!journaler_alive()) {
        failure = fmt::format("the journaler is gone and its journal ends at sequence {}", written);
      }
      break;
    }
    const Result<std::uint64_t> resume = sp.position_at(*channel, expected);
    if (!resume) {
      failure = resume.error().message;
      break;
    }
    if (*resume > expected) {
      // The journal no longer holds `expected`. The ring may (then nothing is lost), or hold more
      // of what is missing than the journal (the drop fallback then loses less); else continue at
      // the journal's earliest sequence, counting as lost only the sequences before it.
      sync();
      if (try_rejoin(poll, false)) break;
      if (core::earliest_retained(ring, ring.capacity / 8).next_sequence < *resume) {
        failure = fmt::format("the journal begins at sequence {}", *resume);
        break;
      }
      sp.pending_lost += *resume - expected;
      expected = *resume;
    }
    journal::JournalRecord rec;
    const Result<bool> got = sp.read_next(rec, expected, written);
    if (!got) {
      failure = got.error().message;
      break;
    }
    if (!*got) continue;  // listed the files again
    // A record larger than the channel allows would overflow what readers size by max_message
    // (a poll into a caller's buffer): a journal of another channel, or damage the checksum missed.
    if (rec.payload.size() + rec.key.size() > ring.max_message) {
      failure = fmt::format("the journal's record at sequence {} holds {} bytes, above the "
                            "channel's max_message {}",
                            rec.sequence, rec.payload.size() + rec.key.size(), ring.max_message);
      break;
    }
    if (deliver_from_journal(poll, rec, expected, sink)) ++handed;
  }
  if (poll.catching_up) sync();
  poll.received += handed;
  if (!failure.empty()) spill_fallback(poll, failure);
  if (poll.catching_up) note_progress(poll);
  return handed;
}

bool SubscriberSlowState::deliver_from_journal(PollState& poll, const journal::JournalRecord& rec,
                                               std::uint64_t& expected, MessageSink sink) noexcept {
  SpillState& sp = *spill;
  if (rec.type == journal::RecordType::gap) {
    // Lost before the journaler saw them (it counted them): reported with the next message.
    const std::uint64_t end = rec.next_sequence();
    if (end > expected) {
      sp.pending_lost += end - expected;
      expected = end;
    }
    return false;
  }
  if (rec.sequence < expected) return false;  // before what we need
  const std::uint64_t lost_before = sp.pending_lost;
  sp.pending_lost = 0;
  poll.lost += lost_before;
  ++expected;
  if (rec.sequence < poll.skip_below) return false;  // walking up to StartFrom::sequence
  std::uint64_t delivered_lost = lost_before;
  if (poll.filter.active) {
    const auto key_length = static_cast<std::uint16_t>(rec.key.size());  // <= kMaxKeyLength
    if (!poll.filter.matches(rec.key.data(), key_length, rec.message_type)) {
      ++poll.filtered;
      poll.filter.carried_lost += lost_before;
      return false;
    }
    delivered_lost += std::exchange(poll.filter.carried_lost, 0);
  }
  ++poll.spilled;
  // End to end, catch-up included: the journal kept the publish time.
  if (poll.latency != nullptr) {
    core::record_latency(*poll.latency, latency_clock->now_ns() - rec.timestamp_ns);
  }
  sink.call(sink.handler, Message{rec.sequence, rec.timestamp_ns, rec.payload, delivered_lost,
                                  rec.key, rec.message_type});
  return true;
}

std::size_t poll_journal(PollState& poll, SubscriberSlowState& slow, MessageSink sink,
                         std::size_t max_messages) noexcept {
  return slow.poll_journal(poll, sink, max_messages);
}

}  // namespace shmbus::detail
