// The journal directory's files as the writer sees them: creating the directory, the journal.lock
// that keeps a second writer out, listing segments, creating and removing a segment with its index,
// and fsyncing the directory so that creations and removals survive a power loss.
//
// Every call is synchronous: they run in open(), on a segment roll and on retention, never per
// record.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "journal/format.hpp"
#include "shmbus/result.hpp"

namespace shmbus::journal {

inline constexpr std::string_view kLockFileName = "journal.lock";

// "<what>: <strerror>" with a code for the errno (EACCES/EPERM/EROFS: permission_denied,
// ENOENT/ENOTDIR: not_found, ENOSPC/EDQUOT/EFBIG: no_space, anything else: system).
Error os_error(int err, const std::string& what);

std::string join_path(const std::string& dir, std::string_view name);

// Creates `dir` (and missing parents) if needed; an error names the path and why.
Result<void> ensure_directory(const std::string& dir);
// fsync on the directory, so entries created, renamed or removed in it are durable.
Result<void> sync_directory(const std::string& dir);

// An exclusive flock on DIR/journal.lock, released when this object goes away (or the process
// dies: the kernel drops flocks with the last descriptor, so a crashed writer leaves no stale lock).
// The holder writes its pid into the file so that a refused writer can name it.
class DirectoryLock {
 public:
  static Result<DirectoryLock> acquire(const std::string& dir);
  DirectoryLock() = default;
  DirectoryLock(DirectoryLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  DirectoryLock& operator=(DirectoryLock&& other) noexcept;
  DirectoryLock(const DirectoryLock&) = delete;
  DirectoryLock& operator=(const DirectoryLock&) = delete;
  ~DirectoryLock();

 private:
  int fd_ = -1;
};

// A segment being created carries this suffix until its header is written (see
// create_segment_file); one found at recovery is a leftover of a crash.
inline constexpr std::string_view kCreatingSuffix = ".creating";

struct DirectoryListing {
  std::vector<std::uint64_t> segments;  // first sequences of the segment files, ascending
  std::vector<std::uint64_t> indexes;   // first sequences of the index files, ascending
  std::vector<std::string> creating;    // names of segments left half-created by a crash
};
Result<DirectoryListing> list_directory(const std::string& dir);

// The size of the file at `path`.
Result<std::uint64_t> file_size(const std::string& path);

// Creates a new segment file (O_EXCL: never over an existing one) and writes its header page
// before anything else, so that a segment file with records always has a header. `sync` also
// fdatasyncs it. Returns the open descriptor (O_DIRECT if `direct`).
Result<int> create_segment_file(const std::string& path, const SegmentHeader& header, bool direct,
                                bool sync);
// Opens an existing segment for appending.
Result<int> open_segment_file(const std::string& path, bool direct);
// Allocates [offset, offset + length) of the segment and makes the file at least that long
// (fallocate, the space reading as zeros). Returns 0 or the errno.
int preallocate_segment(int fd, std::uint64_t offset, std::uint64_t length) noexcept;
// Creates (or replaces) an index file holding its header and `entries`; returns its descriptor.
Result<int> write_index_file(const std::string& path, std::uint64_t first_sequence,
                             const std::vector<IndexEntry>& entries);

// Reads the header of the segment at `path` and the timestamp of its first data record, if its
// first record is one (used as "the newest record of the segment before" by retention).
struct SegmentHead {
  SegmentHeader header;
  std::optional<std::int64_t> first_data_time_ns;
};
std::optional<SegmentHead> read_segment_head(const std::string& path);

// The channel incarnation the journal in `dir` was written for, from its newest segment's header.
// Nothing for an empty journal or an unreadable header (the writer's recovery reports those).
std::optional<std::uint64_t> journal_incarnation(const std::string& dir);

// Removes a file; a file already gone is fine.
Result<void> remove_file(const std::string& path);

}  // namespace shmbus::journal
