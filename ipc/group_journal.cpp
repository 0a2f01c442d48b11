// Spill groups: a group that never gates the producers reads what the ring overwrote from the
// channel's journal. The dispatch cursor then holds no ring position (kNoRingPosition) until the
// ring holds its sequence again; entries of records read from the journal have none either, and
// a redelivery reads them from the journal again.
#include <fmt/format.h>

#include <cstring>

#include "ipc/group_state.hpp"
#include "ipc/group_words.hpp"
#include "ipc/journal_link.hpp"

namespace shmbus::detail {

JournalRead GroupState::read_journal(std::uint64_t sequence, core::RecordView& out) {
  const std::optional<JournalLink> link = find_journal(*channel);
  if (!link) {
    last_error = fmt::format("group '{}': sequence {} is no longer in the ring and the channel "
                             "has no journaler to read it from",
                             group_name, sequence);
    return JournalRead::unavailable;
  }
  if (!journal || journal_dir != link->dir) {
    auto opened = journal::JournalReader::open(link->dir);
    if (!opened) {
      last_error = fmt::format("group '{}': cannot open the journal in {}: {}", group_name,
                               link->dir, opened.error().message);
      return JournalRead::unavailable;
    }
    journal.emplace(std::move(*opened));
    journal_dir = link->dir;
  }
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (auto sought = journal->seek_sequence(sequence); !sought) {
      last_error = sought.error().message;
      return JournalRead::unavailable;
    }
    journal::JournalRecord record{};
    const journal::ReadStatus status = journal->next(record);
    if (status == journal::ReadStatus::damaged) {
      last_error = fmt::format("group '{}': the journal is damaged where sequence {} lies: {}",
                               group_name, sequence, journal->last_error());
      return JournalRead::unavailable;
    }
    if (status == journal::ReadStatus::end) {
      // Not written yet: the journaler trails the ring. Look again at what it appended.
      if (attempt == 0 && journal->refresh()) continue;
      return link->written >= sequence ? JournalRead::unavailable : JournalRead::not_yet;
    }
    if (record.type == journal::RecordType::gap && record.sequence <= sequence &&
        sequence < record.next_sequence()) {
      return JournalRead::lost;
    }
    if (record.type != journal::RecordType::data || record.sequence != sequence) {
      // Retention removed it (the journal starts later) or the journal does not hold it.
      return record.sequence > sequence ? JournalRead::lost : JournalRead::unavailable;
    }
    // The copy buffer holds a record's payload and key (the ring's largest record fits).
    const std::size_t need = record.payload.size() + record.key.size();
    if (need > copy_buffer.size()) return JournalRead::unavailable;
    std::memcpy(copy_buffer.data(), record.payload.data(), record.payload.size());
    if (!record.key.empty()) {
      std::memcpy(copy_buffer.data() + record.payload.size(), record.key.data(), record.key.size());
    }
    out = core::RecordView{sequence,
                           record.timestamp_ns,
                           static_cast<std::uint32_t>(record.payload.size()),
                           core::RecordType::data,
                           copy_buffer.data(),
                           0,
                           record.key.empty() ? nullptr : copy_buffer.data() + record.payload.size(),
                           static_cast<std::uint16_t>(record.key.size()),
                           record.message_type};
    return JournalRead::found;
  }
  return JournalRead::not_yet;
}

std::optional<core::TailWord> GroupState::find_in_ring(std::uint64_t sequence) {
  const core::TailWord b = core::boundary_for_sequence(ring, sequence, ring.capacity / 8);
  if (!core::plausible_place(b) || b.next_sequence > sequence) return std::nullopt;
  // Walk from the boundary to the record (at most the distance between two boundary hints).
  core::RingReader reader(ring, b.position, b.next_sequence);
  for (int step = 0; step < 4096 && reader.next_sequence() < sequence; ++step) {
    std::size_t copied = 0;
    const core::ReadState state = reader.poll_copy([](const core::RecordView&) {}, 1,
                                                   copy_buffer.data(), copy_buffer.size(), copied);
    if (state != core::ReadState::ready) return std::nullopt;
  }
  if (reader.next_sequence() != sequence) return std::nullopt;
  return core::TailWord{reader.position(), sequence};
}

}  // namespace shmbus::detail

namespace shmbus::detail {

bool GroupState::dispatch_from_journal(GroupPair cursor, GroupConsumer::Sink sink,
                                       bool& progressed) {
  progressed = false;
  const std::uint64_t s = cursor.second;
  core::RecordView view{};
  const GroupPair next{kNoRingPosition, s + 1};
  switch (read_journal(s, view)) {
    case JournalRead::not_yet:
      return false;
    case JournalRead::lost:  // a gap in the journal, or retention removed it: gone everywhere
      if (!retire_lost(s, kNoRingPosition)) return false;  // the window is full
      cas_pair(header->dispatch, cursor, next);
      advance_floor();
      progressed = true;
      return false;
    case JournalRead::unavailable: {
      // Neither the ring nor the journal has it: retired as lost, reported, and the group goes
      // on (like a spill subscriber falling back to the ring).
      status = GroupStatus::journal_unavailable;
      if (!retire_lost(s, kNoRingPosition)) return false;  // the window is full
      cas_pair(header->dispatch, cursor, next);
      advance_floor();
      progressed = true;
      return false;
    }
    case JournalRead::found:
      break;
  }
  switch (claim_new(cursor, next, view, kNoRingPosition, sink)) {
    case Claimed::delivered: return true;
    case Claimed::again: progressed = true; return false;
    case Claimed::window_full: return false;
  }
  return false;
}

}  // namespace shmbus::detail
