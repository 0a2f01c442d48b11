// The records of a dead-letter channel as `shmbus dlq` reads them: first from the channel's
// journal (those that left the ring are still there), then from its ring, from the earliest
// record retained on, up to the last one published when the read began. The records are handed
// over in sequence order, each once; what neither holds any more is reported, not hidden.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "shmbus/result.hpp"

namespace shmbus::tools {

struct DlqSourceOptions {
  std::string channel;  // the dead-letter channel
  // Its journal directory. Empty: the directory its current or most recent journaler recorded
  // into, as the channel's control segment says, if any.
  std::string journal_dir;
};

// One record of the dead-letter channel (whatever it holds: decoding is the caller's).
struct DlqRecord {
  std::uint64_t sequence = 0;       // on the dead-letter channel
  std::int64_t timestamp_ns = 0;    // when it was published there
  std::span<const std::byte> bytes;  // its payload; valid during the call only
  bool from_journal = false;
};

// What the read found besides the records.
struct DlqReadSummary {
  std::string journal_dir;  // the journal read; empty if none
  std::uint64_t head_sequence = 0;  // the last sequence published when the read began
  // Said on stderr by the commands: sequences neither the journal nor the ring holds, damage in
  // the journal, a journal directory named by the channel that cannot be read.
  std::vector<std::string> warnings;
  bool damaged = false;  // the journal had damage (reported in `warnings` and skipped)
};

// Calls `on_record` for each record, in sequence order, until it returns false. Errors: the
// channel does not exist or cannot be read (the message names it), or an explicitly given
// journal directory cannot be opened. `on_record` may throw; the exception propagates.
Result<DlqReadSummary> read_dlq_records(const DlqSourceOptions& options,
                                        const std::function<bool(const DlqRecord&)>& on_record);

}  // namespace shmbus::tools
