// The work log of a consumer-group member in the multi-process group tests: what the member did
// with each record it was given, appended to a file of its own with write(2) so that it survives
// kill -9 (a member writes an entry before it acks, so a record acked by a member that died right
// after is still in the log). The test reads every member's log back and checks the group's
// promises against it: each record processed at least once with the right content, every
// repeated delivery marked redelivered, one successful ack per record at most.
//
// An entry is 32 bytes (a divisor of the page size, so one never straddles a page and a kill
// leaves whole entries only, at most a partial last one, which reading drops).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace shmbus::test {

enum class GroupLogKind : std::uint16_t {
  processed = 1,  // delivered and checked; written before the ack or nack
  acked = 2,      // ack() returned ok
  fenced = 3,     // ack() or nack() returned fenced: the record had been taken back
  nacked = 4,     // nack() returned ok
};

inline constexpr std::uint16_t kLogRedelivered = 1;  // GroupMessage::redelivered
inline constexpr std::uint16_t kLogContentOk = 2;    // the payload matched its sequence

struct GroupLogEntry {
  std::uint64_t sequence = 0;
  std::uint32_t attempt = 0;
  GroupLogKind kind = GroupLogKind::processed;
  std::uint16_t flags = 0;
  std::uint64_t checksum = 0;  // payload_checksum (tests/support/payload.hpp) of what it got
  std::uint32_t pid = 0;
  std::uint32_t member = 0;  // GroupConsumer::member_index
};
static_assert(sizeof(GroupLogEntry) == 32);

// Appends entries to a log file (created if missing). Each append is one write(2) of whole
// entries, with O_APPEND.
class GroupLogWriter {
 public:
  GroupLogWriter() = default;
  GroupLogWriter(const GroupLogWriter&) = delete;
  GroupLogWriter& operator=(const GroupLogWriter&) = delete;
  ~GroupLogWriter();
  bool open(const std::string& path);
  bool append(std::span<const GroupLogEntry> entries);

 private:
  int fd_ = -1;
};

// Every whole entry of one log file (a trailing partial entry is dropped); nothing if the file
// cannot be read.
std::optional<std::vector<GroupLogEntry>> read_group_log(const std::string& path);

// Every whole entry of every "*.log" file in `dir`.
std::vector<GroupLogEntry> read_group_logs(const std::string& dir);

}  // namespace shmbus::test
