// The spill policy's state beside a Subscriber: the journal it catches up from. See ipc/spill.cpp
// and docs/architecture.md ("The spill policy").
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "journal/reader.hpp"

namespace shmbus::detail {

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
};

}  // namespace shmbus::detail
