// Helpers for the journal writer tests: a temporary directory, deterministic payloads, appending
// through a full pool, and reading a journal back with journal::scan_segment.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "journal/format.hpp"
#include "journal/segment_scan.hpp"
#include "journal/writer.hpp"
#include "tests/support/journal_files.hpp"

namespace shmbus::journal::test {

using ::shmbus::test::TempDir;

// Bytes that depend on the sequence, so a record read back proves which record it is.
inline std::vector<std::byte> payload_for(std::uint64_t sequence, std::size_t size) {
  std::vector<std::byte> p(size);
  std::uint64_t x = sequence * 0x9e3779b97f4a7c15ull + size;
  for (std::size_t i = 0; i < size; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    p[i] = static_cast<std::byte>(x);
  }
  return p;
}

inline WriterOptions small_options(const std::string& dir) {
  WriterOptions o;
  o.dir = dir;
  o.channel = "test.channel";
  o.incarnation = 7;
  o.segment_bytes = 256 << 10;
  o.buffer_bytes = 16 << 10;
  o.buffers = 4;
  o.retry_interval = std::chrono::milliseconds(5);
  return o;
}

// Appends, reaping (waiting) while every buffer is in flight or waits for a retry. Fails the test
// on other errors.
inline void append_or_wait(JournalWriter& w, std::uint64_t seq, std::int64_t ts,
                           const std::vector<std::byte>& payload) {
  for (int tries = 0; tries < 10000; ++tries) {
    auto r = w.append(seq, ts, payload);
    if (r) return;
    ASSERT_TRUE(r.error().code == ErrorCode::busy || w.blocked()) << r.error().message;
    ASSERT_TRUE(w.reap(true)) << w.last_error();
  }
  FAIL() << "append of " << seq << " never found a free buffer";
}

struct ReadRecord {
  RecordType type;
  std::uint64_t sequence;
  std::int64_t timestamp_ns;
  std::vector<std::byte> payload;
  std::uint64_t offset;
  std::string segment;
};

struct ReadJournal {
  std::vector<std::string> segments;  // paths, oldest first
  std::vector<SegmentScan> scans;
  std::vector<ReadRecord> records;
};

inline std::vector<std::string> segment_paths(const std::string& dir) {
  std::vector<std::pair<std::uint64_t, std::string>> found;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (auto seq = parse_segment_file_name(e.path().filename().string())) {
      found.emplace_back(*seq, e.path().string());
    }
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> out;
  for (auto& f : found) out.push_back(f.second);
  return out;
}

// Scans every segment; the test fails if a segment cannot be scanned.
inline ReadJournal read_journal(const std::string& dir) {
  ReadJournal j;
  j.segments = segment_paths(dir);
  for (const std::string& path : j.segments) {
    auto scan = scan_segment(path, [&](const RecordHeader& h, std::span<const std::byte> payload,
                                       std::uint64_t offset) {
      j.records.push_back(ReadRecord{static_cast<RecordType>(h.type), h.sequence, h.timestamp_ns,
                                     std::vector<std::byte>(payload.begin(), payload.end()), offset,
                                     path});
    });
    EXPECT_TRUE(scan) << path << ": " << (scan ? "" : scan.error().message);
    if (scan) j.scans.push_back(*scan);
  }
  return j;
}

inline bool no_damage(const ReadJournal& j) {
  for (const auto& s : j.scans) {
    if (!s.damage.empty()) return false;
  }
  return true;
}

inline std::uint64_t size_of(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
}

inline std::vector<std::byte> read_file(const std::string& path) {
  std::vector<std::byte> bytes(size_of(path));
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd >= 0) {
    const ssize_t n = ::pread(fd, bytes.data(), bytes.size(), 0);
    bytes.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
    ::close(fd);
  }
  return bytes;
}

inline void write_file(const std::string& path, const std::vector<std::byte>& bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_GE(fd, 0) << path;
  ASSERT_EQ(::pwrite(fd, bytes.data(), bytes.size(), 0), static_cast<ssize_t>(bytes.size()));
  ::close(fd);
}

// Checks that the journal holds exactly records first..last with the payloads payload_for()
// makes, of the sizes `size_of_record` gives.
template <class SizeOf>
void expect_records(const ReadJournal& j, std::uint64_t first, std::uint64_t last,
                    SizeOf size_of_record) {
  ASSERT_EQ(j.records.size(), last - first + 1);
  for (std::uint64_t s = first; s <= last; ++s) {
    const ReadRecord& r = j.records[s - first];
    ASSERT_EQ(r.sequence, s);
    ASSERT_EQ(r.type, RecordType::data);
    ASSERT_EQ(r.payload, payload_for(s, size_of_record(s))) << "payload of sequence " << s;
  }
}

}  // namespace shmbus::journal::test
