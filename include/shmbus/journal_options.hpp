// How a journal is written (WriterOptions) and what opening one found (RecoveryReport): the
// options of shmbus::Journaler (<shmbus/journaler.hpp>) and of the writer in journal/writer.hpp.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace shmbus::journal {

enum class FsyncPolicy : std::uint8_t {
  never,     // the page cache decides; written == survives a process crash, not a power loss;
             // durable_sequence() stays 0
  interval,  // fdatasync every WriterOptions::fsync_interval
  batch,     // fdatasync after every batch of writes (every flush())
};

// The largest WriterOptions::segment_bytes, buffers and buffer_bytes open() accepts. A segment's
// index is allocated for its whole size (32 bytes per 64 KiB: 8 MiB at the largest), and the ring
// has four entries per buffer (io_uring takes at most 32768).
inline constexpr std::uint64_t kMaxSegmentBytes = 16ull << 30;
inline constexpr unsigned kMaxWriteBuffers = 8192;
inline constexpr std::size_t kMaxWriteBufferBytes = std::size_t{1} << 30;

struct WriterOptions {
  std::string dir;
  std::string channel;              // written into segment headers
  std::uint64_t incarnation = 0;    // the channel's incarnation id, written into segment headers
  std::uint64_t segment_bytes = 256ull << 20;  // roll to a new segment past this size
  std::uint64_t retain_bytes = 0;   // delete the oldest segments past this total (0: keep all)
  std::chrono::seconds retain_age{0};  // delete segments whose newest record is older (0: keep)
  FsyncPolicy fsync = FsyncPolicy::never;
  std::chrono::milliseconds fsync_interval{100};
  // O_DIRECT (whole 4 KiB blocks; the tail block is rewritten). Each segment is preallocated up
  // to segment_bytes when its first write is queued (see writer_submission.hpp), so while the
  // writer is open the newest segment ends in zeros: padding up to a block boundary and the
  // space not yet written, a clean tail to the scanner; they are cut when a segment is finished
  // and when the writer closes.
  bool direct = false;
  // Under O_DIRECT, preallocate each segment (above). Writes inside the file are issued straight
  // from the submission; their completions then run on the kernel's filesystem worker on the
  // CPU taking the disk's interrupts, which a thread spinning flat out on that CPU can starve.
  // Without preallocation every write extends the file and runs on an io_uring worker thread of
  // this process, one at a time: slower, but its CPU is the journaler's own.
  bool preallocate = true;
  // One write buffer (rounded up to 4 KiB); records larger get a buffer of their own.
  std::size_t buffer_bytes = 1 << 20;
  unsigned buffers = 8;             // buffers in the pool = writes in flight at most
  std::chrono::milliseconds retry_interval{100};  // between retries of a failed write
};

// What open() found and did.
struct RecoveryReport {
  std::uint64_t segments = 0;        // segment files found
  std::uint64_t next_sequence = 0;   // where the journal continues (0: empty journal)
  // Torn tail cut off the newest segment: the bytes after its last valid record, up to the last
  // one that is not zero. The zeros after that (block padding, space an O_DIRECT writer
  // preallocates ahead of its writes) are cut too but were never data, so they are not counted.
  std::uint64_t truncated_bytes = 0;
  std::string truncated_segment;     // which file was cut (empty if truncated_bytes is 0)
  std::vector<std::string> damage;   // damage found in the middle (reported, not repaired)
  std::vector<std::string> removed;  // leftovers removed (e.g. an empty segment from a crash)
  // Crash artefacts of out-of-order write completion, cut or set aside: a hole of zeros with
  // records after it, a segment that follows a segment ending short. Their records were never
  // counted written, so the journaler writes them again from the channel.
  std::vector<std::string> crash_repairs;
};

}  // namespace shmbus::journal
