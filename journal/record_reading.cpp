#include "journal/record_reading.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <utility>

#include <fmt/format.h>

namespace shmbus::journal::detail {
namespace {

constexpr std::uint16_t kDataType = static_cast<std::uint16_t>(RecordType::data);
constexpr std::uint16_t kGapType = static_cast<std::uint16_t>(RecordType::gap);

RecordHeader header_at(std::span<const std::byte> bytes) noexcept {
  RecordHeader h;
  std::memcpy(&h, bytes.data(), sizeof h);  // the buffer offset need not be aligned for the struct
  return h;
}

// The cheap field tests of check_record_fields without building a message: the forward search
// runs them at every aligned offset of what may be megabytes of garbage or zeros.
bool plausible_header(const RecordHeader& h, std::uint64_t min_sequence) noexcept {
  if (h.type != kDataType && h.type != kGapType) return false;
  if ((h.flags & ~kRecordFlagTagged) != 0 || h.reserved != 0 || h.length > kMaxRecordPayload) {
    return false;
  }
  if (h.flags != 0 && h.type != kDataType) return false;
  if (h.type == kGapType && h.length != sizeof(GapPayload)) return false;
  return h.sequence != 0 && h.sequence >= min_sequence;
}

std::string_view base_name(const std::string& path) {
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? std::string_view(path)
                                    : std::string_view(path).substr(slash + 1);
}

}  // namespace

Error file_error(const std::string& what, const std::string& path, int err) {
  ErrorCode code = ErrorCode::system;
  if (err == ENOENT || err == ENOTDIR) code = ErrorCode::not_found;
  if (err == EACCES || err == EPERM) code = ErrorCode::permission_denied;
  return Error{code, fmt::format("{} '{}': {}", what, path, std::strerror(err))};
}

FileWindow::FileWindow(FileWindow&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      path_(std::move(other.path_)),
      limit_(other.limit_),
      chunk_(other.chunk_),
      buffer_(std::move(other.buffer_)),
      buffer_offset_(other.buffer_offset_),
      buffered_(std::exchange(other.buffered_, 0)) {}

FileWindow& FileWindow::operator=(FileWindow&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = std::exchange(other.fd_, -1);
    path_ = std::move(other.path_);
    limit_ = other.limit_;
    chunk_ = other.chunk_;
    buffer_ = std::move(other.buffer_);
    buffer_offset_ = other.buffer_offset_;
    buffered_ = std::exchange(other.buffered_, 0);
  }
  return *this;
}

FileWindow::~FileWindow() { close(); }

Result<void> FileWindow::open(const std::string& path) {
  close();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return tl::unexpected(file_error("cannot open journal segment", path, errno));
  fd_ = fd;
  path_ = path;
  auto size = current_size();
  if (!size) {
    close();
    return tl::unexpected(size.error());
  }
  limit_ = *size;
  return {};
}

void FileWindow::close() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  buffered_ = 0;
  limit_ = 0;
}

void FileWindow::set_limit(std::uint64_t limit) noexcept {
  limit_ = limit;
  // Bytes buffered beyond a lowered limit must not be served.
  if (buffer_offset_ >= limit) {
    buffered_ = 0;
  } else if (buffered_ > limit - buffer_offset_) {
    buffered_ = static_cast<std::size_t>(limit - buffer_offset_);
  }
}

Result<std::uint64_t> FileWindow::current_size() const {
  struct stat st {};
  if (::fstat(fd_, &st) != 0) return tl::unexpected(file_error("cannot stat", path_, errno));
  return static_cast<std::uint64_t>(st.st_size);
}

std::uint64_t FileWindow::next_written(std::uint64_t offset) const noexcept {
  if (offset >= limit_) return limit_;
  const off_t at = ::lseek(fd_, static_cast<off_t>(offset), SEEK_DATA);
  if (at < 0) return errno == ENXIO ? limit_ : offset;  // ENXIO: only holes from here on
  return std::min(static_cast<std::uint64_t>(at), limit_);
}

std::uint64_t FileWindow::written_end(std::uint64_t offset) const noexcept {
  if (offset >= limit_) return limit_;
  const off_t at = ::lseek(fd_, static_cast<off_t>(offset), SEEK_HOLE);
  if (at < 0) return limit_;
  return std::min(static_cast<std::uint64_t>(at), limit_);
}

Result<std::span<const std::byte>> FileWindow::view(std::uint64_t offset, std::size_t n) {
  if (offset > limit_ || n > limit_ - offset) return std::span<const std::byte>{};
  if (n == 0) return std::span<const std::byte>{};
  if (offset >= buffer_offset_ && offset - buffer_offset_ <= buffered_ &&
      n <= buffered_ - (offset - buffer_offset_)) {
    return std::span<const std::byte>(buffer_.data() + (offset - buffer_offset_), n);
  }
  const std::size_t want =
      static_cast<std::size_t>(std::min<std::uint64_t>(std::max(n, chunk_), limit_ - offset));
  if (buffer_.size() < want) buffer_.resize(want);
  std::size_t got = 0;
  while (got < want) {
    const ssize_t r = ::pread(fd_, buffer_.data() + got, want - got,
                              static_cast<off_t>(offset + got));
    if (r < 0) {
      if (errno == EINTR) continue;
      buffered_ = 0;
      return tl::unexpected(file_error("cannot read", path_, errno));
    }
    if (r == 0) break;  // the file is shorter than listed (a journaler cut its torn tail)
    got += static_cast<std::size_t>(r);
  }
  buffer_offset_ = offset;
  buffered_ = got;
  if (got < n) return std::span<const std::byte>{};
  return std::span<const std::byte>(buffer_.data(), n);
}

Result<SegmentHeader> read_segment_header(FileWindow& file) {
  const std::string& path = file.path();
  if (file.limit() < sizeof(SegmentHeader)) {
    return tl::unexpected(Error{
        ErrorCode::corrupt, fmt::format("journal segment '{}': {} bytes, shorter than a segment "
                                        "header",
                                        path, file.limit())});
  }
  auto bytes = file.view(0, sizeof(SegmentHeader));
  if (!bytes) return tl::unexpected(bytes.error());
  if (bytes->size() != sizeof(SegmentHeader)) {
    return tl::unexpected(Error{ErrorCode::corrupt,
                                fmt::format("journal segment '{}': shrank while being read", path)});
  }
  SegmentHeader h;
  std::memcpy(&h, bytes->data(), sizeof h);
  if (auto bad = check_segment_header(h)) {
    const bool version = std::memcmp(h.magic, kSegmentMagic, sizeof h.magic) == 0 &&
                         !readable_version(h.version);
    return tl::unexpected(Error{version ? ErrorCode::version_mismatch : ErrorCode::corrupt,
                                fmt::format("journal segment '{}': {}", path, *bad)});
  }
  if (file.limit() < kSegmentHeaderSize) {
    return tl::unexpected(Error{
        ErrorCode::corrupt,
        fmt::format("journal segment '{}': {} bytes, shorter than its {}-byte header page", path,
                    file.limit(), kSegmentHeaderSize)});
  }
  if (const auto named = parse_segment_file_name(base_name(path));
      named && *named != h.first_sequence) {
    return tl::unexpected(Error{
        ErrorCode::corrupt,
        fmt::format("journal segment '{}': the file name says first sequence {} but the header "
                    "says {}",
                    path, *named, h.first_sequence)});
  }
  return h;
}

std::uint64_t Probe::gap_count() const noexcept {
  if (header.type != kGapType || payload.size() != sizeof(GapPayload)) return 0;
  GapPayload g;
  std::memcpy(&g, payload.data(), sizeof g);
  return g.count;
}

std::uint64_t Probe::next_sequence() const noexcept {
  return header.type == kGapType ? header.sequence + gap_count() : header.sequence + 1;
}

Result<Probe> probe_record(FileWindow& file, std::uint64_t offset) {
  Probe p;
  const std::uint64_t limit = file.limit();
  if (offset == limit) return p;  // Probe::end
  p.kind = Probe::invalid;
  if (offset > limit) {
    p.why = fmt::format("offset is past the end of the file ({} bytes)", limit);
    return p;
  }
  if (limit - offset < kRecordHeaderSize) {
    p.why = fmt::format("{} bytes at the end of the file, less than a record header",
                        limit - offset);
    return p;
  }
  auto head = file.view(offset, kRecordHeaderSize);
  if (!head) return tl::unexpected(head.error());
  if (head->empty()) {
    p.why = "the file is shorter than when it was listed";
    return p;
  }
  p.header = header_at(*head);
  if (auto bad = check_record_fields(p.header)) {
    p.why = std::move(*bad);
    return p;
  }
  const std::uint64_t size = padded_record_size(p.header.length);
  if (size > limit - offset) {
    p.why = fmt::format("a record of {} payload bytes runs past the end of the file ({} bytes)",
                        p.header.length, limit);
    return p;
  }
  auto payload = file.view(offset + kRecordHeaderSize, p.header.length);
  if (!payload) return tl::unexpected(payload.error());
  if (payload->size() != p.header.length) {
    p.why = "the file is shorter than when it was listed";
    return p;
  }
  if (auto bad = check_record(p.header, *payload)) {
    p.why = std::move(*bad);
    return p;
  }
  p.kind = Probe::record;
  p.payload = *payload;
  p.size = size;
  return p;
}

namespace {

// The first 8-byte word at or after `from` (8-byte aligned) and below `until` that is not zero;
// `until` if there is none, or the offset where the file stopped giving bytes (the caller's own
// read then finds out why). A tight loop over what the window holds, 64 KiB at a time.
Result<std::uint64_t> first_nonzero_word(FileWindow& file, std::uint64_t from,
                                         std::uint64_t until) {
  constexpr std::uint64_t kPiece = 64 << 10;
  for (std::uint64_t at = from; until >= 8 && at <= until - 8;) {
    const auto n = static_cast<std::size_t>(std::min(kPiece, (until - at) & ~std::uint64_t{7}));
    auto bytes = file.view(at, n);
    if (!bytes) return tl::unexpected(bytes.error());
    if (bytes->size() < n) return at;
    for (std::size_t i = 0; i < n; i += 8) {
      std::uint64_t word;
      std::memcpy(&word, bytes->data() + i, sizeof word);
      if (word != 0) return at + i;
    }
    at += n;
  }
  return until;
}

}  // namespace

Result<std::optional<FoundRecord>> find_valid_record(FileWindow& file, std::uint64_t from,
                                                     std::uint64_t min_sequence) {
  constexpr std::uint64_t kAlign = kRecordAlignment;
  constexpr std::size_t kCrcChunk = 1 << 20;
  // A header's type field is never zero, and neither is the 8-byte word it starts (type, flags,
  // reserved), so a record can only start where that word is written and not zero: holes (the
  // journaler's preallocated tail, megabytes of zeros) are skipped without reading them, runs of
  // zero words with a tight loop.
  constexpr std::uint64_t kTypeOffset = offsetof(RecordHeader, type);
  static_assert(kTypeOffset % kAlign == 0);
  const std::uint64_t limit = file.limit();
  std::uint64_t written_until = 0;  // offsets below this are known to hold written bytes
  for (std::uint64_t o = (from + kAlign - 1) & ~(kAlign - 1);
       limit >= kRecordHeaderSize && o <= limit - kRecordHeaderSize; o += kAlign) {
    if (o + kTypeOffset >= written_until) {
      const std::uint64_t written = file.next_written(o + kTypeOffset);
      if (written >= limit) break;
      if (written > o + kTypeOffset) o = (written - kTypeOffset) & ~(kAlign - 1);
      if (o > limit - kRecordHeaderSize) break;
      written_until = file.written_end(written);
    }
    auto nonzero = first_nonzero_word(file, o + kTypeOffset, std::min(written_until, limit));
    if (!nonzero) return tl::unexpected(nonzero.error());
    if (*nonzero > o + kTypeOffset) {
      o = *nonzero - kTypeOffset - kAlign;  // the loop's step lands on it
      continue;
    }
    auto head = file.view(o, kRecordHeaderSize);
    if (!head) return tl::unexpected(head.error());
    if (head->empty()) break;  // the file shrank under us
    const RecordHeader h = header_at(*head);
    if (!plausible_header(h, min_sequence)) continue;
    if (padded_record_size(h.length) > limit - o) continue;
    if (h.type == kGapType) {  // small: the full check, which also judges the count
      auto p = probe_record(file, o);
      if (!p) return tl::unexpected(p.error());
      if (p->kind == Probe::record) return std::optional<FoundRecord>(FoundRecord{o, h});
      continue;
    }
    // The record checksum (as check_record computes it) fed chunk by chunk: a forged length of up
    // to 1 GiB must not make the search allocate that much.
    std::uint32_t crc = record_crc_start(h);
    bool readable = true;
    for (std::uint64_t done = 0; done < h.length;) {
      const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(kCrcChunk, h.length - done));
      auto part = file.view(o + kRecordHeaderSize + done, n);
      if (!part) return tl::unexpected(part.error());
      if (part->size() != n) {
        readable = false;
        break;
      }
      crc = crc32c(crc, part->data(), n);
      done += n;
    }
    if (readable && mask_crc(crc) == h.crc) return std::optional<FoundRecord>(FoundRecord{o, h});
  }
  return std::optional<FoundRecord>{};
}

}  // namespace shmbus::journal::detail
