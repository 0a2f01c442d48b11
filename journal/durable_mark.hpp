// DIR/journal.durable, the durable mark (the bytes: DurableMark in journal/format.hpp): the last
// sequence the writer reported durable. verify and recovery read it to tell a torn tail (bytes
// the writer never reported durable) from damage; recovery and the writer's fdatasync rounds
// (journal/writer_submission.cpp) write it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "shmbus/result.hpp"

namespace shmbus::journal {

struct DurableMarkRead {
  // Every record up to this sequence was reported durable; nothing: no mark (a journal written
  // under FsyncPolicy::never or by an older writer) or one that cannot be read (`problem`).
  std::optional<std::uint64_t> durable_sequence;
  std::optional<std::string> problem;  // why the mark file there is not used, naming it
};

DurableMarkRead read_durable_mark(const std::string& dir);

// Writes the mark and fdatasyncs it, creating the file (and syncing the directory, so that the
// new entry survives a power loss) if it is missing. Synchronous: for recovery at open.
Result<void> write_durable_mark(const std::string& dir, std::uint64_t durable_sequence);

// Opens the existing mark file for the writer's rewrites (read-write, not O_DIRECT).
Result<int> open_durable_mark(const std::string& dir);

// `sequence` was reported durable and the journal ends before it (its next sequence is
// `journal_end`): an error naming what is missing, for recovery to refuse with.
std::optional<Error> durable_records_missing(const std::string& where, std::uint64_t journal_end,
                                             std::uint64_t durable_sequence,
                                             const std::string& what);

}  // namespace shmbus::journal
