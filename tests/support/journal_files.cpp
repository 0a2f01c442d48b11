#include "tests/support/journal_files.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>

namespace shmbus::test {
namespace {

[[noreturn]] void fail(const std::string& what, const std::string& path) {
  throw std::runtime_error(what + " '" + path + "': " + std::strerror(errno));
}

void pwrite_all(int fd, const std::byte* data, std::size_t n, std::uint64_t offset,
                const std::string& path) {
  while (n > 0) {
    const ssize_t w = ::pwrite(fd, data, n, static_cast<off_t>(offset));
    if (w < 0) {
      if (errno == EINTR) continue;
      fail("pwrite", path);
    }
    data += w;
    n -= static_cast<std::size_t>(w);
    offset += static_cast<std::uint64_t>(w);
  }
}

template <class T>
std::span<const std::byte> bytes_of(const T& value) {
  return std::as_bytes(std::span<const T>(&value, 1));
}

}  // namespace

TempDir::TempDir(std::string_view tag) {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") +
                        "/shmbus-" + std::string(tag) + "-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) fail("mkdtemp", pattern);
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

SegmentBuilder::SegmentBuilder(std::string dir, std::uint64_t first_sequence,
                               std::uint64_t segment_number, std::string_view channel,
                               std::int64_t created_ns)
    : dir_(std::move(dir)), first_sequence_(first_sequence), bytes_(journal::kSegmentHeaderSize) {
  journal::SegmentHeader h;
  journal::make_segment_header(h, channel, 0x1234, first_sequence, segment_number, created_ns);
  std::memcpy(bytes_.data(), &h, sizeof h);
}

std::uint64_t SegmentBuilder::append_record(journal::RecordType type, std::uint64_t sequence,
                                            std::int64_t timestamp_ns,
                                            std::span<const std::byte> payload,
                                            std::uint64_t gap_count) {
  journal::RecordHeader h;
  journal::make_record_header(h, type, sequence, timestamp_ns, payload);
  const std::uint64_t offset = bytes_.size();
  const std::uint64_t size = journal::padded_record_size(payload.size());
  bytes_.resize(offset + size);  // zero padding included
  std::memcpy(bytes_.data() + offset, &h, sizeof h);
  if (!payload.empty()) {
    std::memcpy(bytes_.data() + offset + sizeof h, payload.data(), payload.size());
  }
  BuiltRecord r{type, sequence, timestamp_ns, gap_count, offset, size, {}};
  if (type == journal::RecordType::data) r.payload.assign(payload.begin(), payload.end());
  records_.push_back(std::move(r));
  return offset;
}

std::uint64_t SegmentBuilder::data(std::uint64_t sequence, std::int64_t timestamp_ns,
                                   std::span<const std::byte> payload) {
  return append_record(journal::RecordType::data, sequence, timestamp_ns, payload, 0);
}

std::uint64_t SegmentBuilder::data(std::uint64_t sequence, std::int64_t timestamp_ns,
                                   std::string_view text) {
  return data(sequence, timestamp_ns, std::as_bytes(std::span(text.data(), text.size())));
}

std::uint64_t SegmentBuilder::gap(std::uint64_t first_sequence, std::uint64_t count,
                                  std::int64_t seen_ns) {
  const journal::GapPayload g{count};
  return append_record(journal::RecordType::gap, first_sequence, seen_ns, bytes_of(g), count);
}

std::uint64_t SegmentBuilder::raw(std::span<const std::byte> bytes) {
  const std::uint64_t offset = bytes_.size();
  bytes_.insert(bytes_.end(), bytes.begin(), bytes.end());
  return offset;
}

std::uint64_t SegmentBuilder::zeros(std::size_t n) {
  const std::uint64_t offset = bytes_.size();
  bytes_.resize(offset + n);
  return offset;
}

std::string SegmentBuilder::path() const {
  return dir_ + "/" + journal::segment_file_name(first_sequence_);
}

std::string SegmentBuilder::index_path() const {
  return dir_ + "/" + journal::index_file_name(first_sequence_);
}

void SegmentBuilder::write() const { write_whole_file(path(), bytes_); }

std::vector<journal::IndexEntry> SegmentBuilder::index_entries(std::uint64_t below_offset) const {
  std::vector<journal::IndexEntry> entries;
  std::int64_t max_time = 0;
  std::uint64_t boundary = 0;
  for (const BuiltRecord& r : records_) {
    if (r.offset >= below_offset) break;
    if (r.type == journal::RecordType::data) max_time = std::max(max_time, r.timestamp_ns);
    if (r.offset < boundary) continue;
    journal::IndexEntry e;
    journal::make_index_entry(e, r.sequence, max_time, r.offset);
    entries.push_back(e);
    // The next entry is for the first record at or after the next boundary past this one.
    boundary = (r.offset / journal::kIndexInterval + 1) * journal::kIndexInterval;
  }
  return entries;
}

void SegmentBuilder::write_index() const { write_index_up_to(UINT64_MAX); }

void SegmentBuilder::write_index_up_to(std::uint64_t offset) const {
  journal::IndexHeader h;
  journal::make_index_header(h, first_sequence_);
  std::vector<std::byte> out(bytes_of(h).begin(), bytes_of(h).end());
  for (const journal::IndexEntry& e : index_entries(offset)) {
    const auto b = bytes_of(e);
    out.insert(out.end(), b.begin(), b.end());
  }
  write_whole_file(index_path(), out);
}

std::vector<std::byte> journal_payload(std::uint64_t sequence, std::size_t size) {
  std::vector<std::byte> out(size);
  std::uint64_t x = sequence * 0x9e3779b97f4a7c15ull + size;
  for (std::size_t i = 0; i < size; ++i) {
    x ^= x >> 29;
    x *= 0xbf58476d1ce4e5b9ull;
    out[i] = static_cast<std::byte>(x >> 56);
  }
  return out;
}

std::vector<std::byte> read_whole_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("open", path);
  std::vector<std::byte> out;
  std::byte chunk[65536];
  for (;;) {
    const ssize_t r = ::read(fd, chunk, sizeof chunk);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      ::close(fd);
      fail("read", path);
    }
    if (r == 0) break;
    out.insert(out.end(), chunk, chunk + r);
  }
  ::close(fd);
  return out;
}

void write_whole_file(const std::string& path, std::span<const std::byte> bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail("open", path);
  pwrite_all(fd, bytes.data(), bytes.size(), 0, path);
  ::close(fd);
}

void flip_byte(const std::string& path, std::uint64_t offset, std::uint8_t mask) {
  auto bytes = read_whole_file(path);
  if (offset >= bytes.size()) throw std::out_of_range("flip_byte past the end of " + path);
  bytes[offset] ^= static_cast<std::byte>(mask);
  write_whole_file(path, bytes);
}

void truncate_file(const std::string& path, std::uint64_t size) {
  if (::truncate(path.c_str(), static_cast<off_t>(size)) != 0) fail("truncate", path);
}

void append_to_file(const std::string& path, std::span<const std::byte> bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) fail("open", path);
  const off_t end = ::lseek(fd, 0, SEEK_END);
  pwrite_all(fd, bytes.data(), bytes.size(), static_cast<std::uint64_t>(end), path);
  ::close(fd);
}

}  // namespace shmbus::test
