// The spill policy's state beside a Subscriber: the journal it catches up from. See ipc/spill.cpp
// and docs/architecture.md ("The spill policy").
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "shmbus/journal_reader.hpp"
#include "shmbus/result.hpp"

namespace shmbus::detail {

class ChannelMapping;

struct SpillState {
  // Open while catching up (kept between catch-ups while the directory stays the same).
  std::optional<journal::JournalReader> journal;
  std::string dir;                 // the directory `journal` reads
  std::uint64_t owner_word = 0;    // ControlHeader::journal_owner when `dir` was read
  bool positioned = false;         // `journal` was sought to the sequence we expect
  bool refreshed = false;          // an `end` was already answered with a refresh()
  std::uint64_t pending_lost = 0;  // lost sequences (gap records) the next message reports
  std::int64_t next_alive_check_ns = 0;  // when to look at /proc for the journaler again
  bool journaler_alive = true;

  // Opens the journal (in `dir`, or the directory of the journaler attached to `channel`) and
  // seeks it to `expected`, unless it is there already. Returns where the journal continues:
  // `expected`, or, when the journal no longer holds it (retention removed its oldest segments,
  // or the journal began later), the journal's earliest sequence. The error says why it cannot.
  Result<std::uint64_t> position_at(const ChannelMapping& channel, std::uint64_t expected);
  // Reads the next record into `record`: true when there is one; false when the reader had read
  // all it had listed and listed the files again, or retention removed what it was reading
  // (position again and read again); an error when the journal ends before `expected` although
  // the journaler reported `written`, or is damaged.
  Result<bool> read_next(journal::JournalRecord& record, std::uint64_t expected,
                         std::uint64_t written);

 private:
  bool journal_begins_after(std::uint64_t expected);
};

}  // namespace shmbus::detail
