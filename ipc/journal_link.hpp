// The link between a channel and its journaler, kept in the control segment's journal section
// (ControlHeader::journal_*): who records the channel, into which directory, and how far the
// journal files reach. The journaler (Journaler in include/shmbus/journaler.hpp, `shmbus record`) is the only writer;
// publishers read it to wait for durability, spill subscribers to catch up from the files.
//
// Invariants:
//  1. At most one live journaler per channel: the owner word is taken by CAS, from 0 or from a
//     process that is dead (pid + start time), never from a live one.
//  2. A reader that sees an owner (without kJournalClaiming) sees its complete directory.
//  3. journal_durable <= journal_written, and both only grow while one journaler is attached.
//     A journaler attaching to the same directory keeps them (they are still true of its files);
//     one attaching to another directory starts them at 0.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "ipc/channel.hpp"
#include "ipc/process.hpp"
#include "shmbus/shmbus.hpp"

namespace shmbus::detail {

// Attaches the calling process as the channel's journaler, recording into `absolute_dir`.
// ErrorCode::busy naming the pid when a live journaler is attached (this process included);
// invalid_argument for a relative or too long path. Takes over from a dead journaler.
// After it, the journaler should publish its recovered progress (publish_journal_progress).
Result<void> claim_journal(ChannelMapping& channel, const std::string& absolute_dir);

// Publishes the journaler's progress: every sequence <= written is in the files, every sequence
// <= durable is also synced. Two release stores and a clock read; no system call. Only the
// attached journaler calls it (it is not checked: that would need a system call).
void publish_journal_progress(ChannelMapping& channel, std::uint64_t written,
                              std::uint64_t durable) noexcept;

// Detaches the calling process, if it is still the attached journaler (a peer may have taken
// over after judging it dead). The progress words keep their last values.
void release_journal(ChannelMapping& channel) noexcept;

struct JournalLink {
  std::string dir;
  ProcessId owner;
  std::uint64_t written = 0;
  std::uint64_t durable = 0;
  bool alive = false;  // the owner process still runs (reads /proc)
};

// The channel's journaler as the control segment describes it, or nothing when none is attached
// (or one is attaching right now). Slow path: allocates, reads /proc.
std::optional<JournalLink> find_journal(const ChannelMapping& channel);
// The same from a control segment alone (tools' read-only mappings).
std::optional<JournalLink> find_journal(const ControlHeader& control);

// The directory of the current or most recent journaler, attached or not: a journaler that
// detaches leaves its directory in the control segment (until another one attaches). Nothing if
// no journaler ever attached, or one is attaching right now. For tools that read a channel's
// journal after its journaler stopped (`shmbus dlq`); a live reader wants find_journal.
std::optional<std::string> last_journal_dir(const ControlHeader& control);

}  // namespace shmbus::detail
