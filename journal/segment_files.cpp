#include "journal/segment_files.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "journal/aligned_buffer.hpp"

namespace shmbus::journal {

Error os_error(int err, const std::string& what) {
  ErrorCode code = ErrorCode::system;
  switch (err) {
    case EACCES:
    case EPERM:
    case EROFS:
      code = ErrorCode::permission_denied;
      break;
    case ENOENT:
    case ENOTDIR:
      code = ErrorCode::not_found;
      break;
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
      code = ErrorCode::no_space;
      break;
    default:
      break;
  }
  return Error{code, fmt::format("{}: {}", what, std::strerror(err))};
}

std::string join_path(const std::string& dir, std::string_view name) {
  std::string p = dir;
  if (!p.empty() && p.back() != '/') p += '/';
  p += name;
  return p;
}

namespace {

// Writes all of `n` bytes at `offset`, retrying interrupted and partial writes.
int pwrite_all(int fd, const void* data, std::size_t n, off_t offset) {
  const auto* p = static_cast<const std::byte*>(data);
  while (n > 0) {
    const ssize_t w = ::pwrite(fd, p, n, offset);
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (w == 0) return EIO;
    p += w;
    n -= static_cast<std::size_t>(w);
    offset += w;
  }
  return 0;
}

}  // namespace

Result<void> ensure_directory(const std::string& dir) {
  if (dir.empty()) return tl::unexpected(Error{ErrorCode::invalid_argument, "no journal directory given"});
  struct stat st {};
  if (::stat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) {
      return tl::unexpected(os_error(ENOTDIR, fmt::format("journal directory {} is not a directory", dir)));
    }
    return {};
  }
  if (errno != ENOENT) return tl::unexpected(os_error(errno, fmt::format("cannot stat journal directory {}", dir)));
  // Create the parents first (mkdir -p), then this one; a racing creator is fine (EEXIST).
  const auto slash = dir.find_last_of('/', dir.size() > 1 ? dir.size() - 2 : 0);
  if (slash != std::string::npos && slash > 0) {
    if (auto parent = ensure_directory(dir.substr(0, slash)); !parent) return parent;
  }
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return tl::unexpected(os_error(errno, fmt::format("cannot create journal directory {}", dir)));
  }
  return {};
}

Result<void> sync_directory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return tl::unexpected(os_error(errno, fmt::format("cannot open directory {}", dir)));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) return tl::unexpected(os_error(err, fmt::format("fsync of directory {} failed", dir)));
  return {};
}

DirectoryLock& DirectoryLock::operator=(DirectoryLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

DirectoryLock::~DirectoryLock() {
  if (fd_ >= 0) ::close(fd_);
}

Result<DirectoryLock> DirectoryLock::acquire(const std::string& dir) {
  const std::string path = join_path(dir, kLockFileName);
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return tl::unexpected(os_error(errno, fmt::format("cannot open the journal lock {}", path)));
  DirectoryLock lock;
  lock.fd_ = fd;
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    if (err != EWOULDBLOCK) {
      return tl::unexpected(os_error(err, fmt::format("cannot lock the journal {}", path)));
    }
    char text[32] = {};
    const ssize_t n = ::pread(fd, text, sizeof text - 1, 0);
    const std::string holder = n > 0 ? std::string(text, static_cast<std::size_t>(n)) : "unknown";
    return tl::unexpected(Error{
        ErrorCode::busy,
        fmt::format("journal {} is locked by another writer (pid {})", dir,
                    holder.substr(0, holder.find_first_of("\n\r")))});
  }
  const std::string pid = fmt::format("{}\n", ::getpid());
  if (::ftruncate(fd, 0) != 0 || pwrite_all(fd, pid.data(), pid.size(), 0) != 0) {
    return tl::unexpected(os_error(errno, fmt::format("cannot write the journal lock {}", path)));
  }
  return lock;
}

Result<DirectoryListing> list_directory(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return tl::unexpected(os_error(errno, fmt::format("cannot list journal directory {}", dir)));
  DirectoryListing out;
  while (const dirent* e = ::readdir(d)) {
    const std::string_view name = e->d_name;
    if (auto seq = parse_segment_file_name(name)) {
      out.segments.push_back(*seq);
    } else if (name.ends_with(kCreatingSuffix)) {
      out.creating.push_back(std::string(name));
    } else if (name.size() == 20 + kIndexSuffix.size() && name.ends_with(kIndexSuffix)) {
      // Index names follow segment names: reuse the parser on the segment name it belongs to.
      std::string as_segment(name.substr(0, 20));
      as_segment += kSegmentSuffix;
      if (auto iseq = parse_segment_file_name(as_segment)) out.indexes.push_back(*iseq);
    }
  }
  ::closedir(d);
  std::sort(out.segments.begin(), out.segments.end());
  std::sort(out.indexes.begin(), out.indexes.end());
  return out;
}

Result<std::uint64_t> file_size(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return tl::unexpected(os_error(errno, fmt::format("cannot stat {}", path)));
  return static_cast<std::uint64_t>(st.st_size);
}

Result<int> create_segment_file(const std::string& path, const SegmentHeader& header, bool direct,
                                bool sync) {
  // Built under a temporary name and linked into place, so that no reader (a replay, a spill
  // subscriber, verify) ever sees a segment file without its header. link() fails if the name
  // exists, as O_EXCL would.
  const std::string temp = path + std::string(kCreatingSuffix);
  ::unlink(temp.c_str());  // a leftover of a crash at this very step
  const int fd = ::open(temp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | (direct ? O_DIRECT : 0), 0644);
  if (fd < 0) return tl::unexpected(os_error(errno, fmt::format("cannot create segment {}", path)));
  // The page buffer is aligned so that the same write works under O_DIRECT.
  AlignedBuffer page = AlignedBuffer::allocate(kSegmentHeaderSize);
  int err = page ? 0 : ENOMEM;
  if (err == 0) {
    std::memcpy(page.data(), &header, sizeof header);
    err = pwrite_all(fd, page.data(), kSegmentHeaderSize, 0);
  }
  if (err == 0 && sync && ::fdatasync(fd) != 0) err = errno;
  if (err == 0 && ::link(temp.c_str(), path.c_str()) != 0) err = errno;
  ::unlink(temp.c_str());
  if (err != 0) {
    ::close(fd);
    return tl::unexpected(os_error(err, fmt::format("cannot create segment {} with its header", path)));
  }
  return fd;
}

Result<int> open_segment_file(const std::string& path, bool direct) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC | (direct ? O_DIRECT : 0));
  if (fd < 0) return tl::unexpected(os_error(errno, fmt::format("cannot open segment {}", path)));
  return fd;
}

int preallocate_segment(int fd, std::uint64_t offset, std::uint64_t length) noexcept {
  return ::fallocate(fd, 0, static_cast<off_t>(offset), static_cast<off_t>(length)) == 0 ? 0
                                                                                        : errno;
}

Result<int> write_index_file(const std::string& path, std::uint64_t first_sequence,
                             const std::vector<IndexEntry>& entries) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return tl::unexpected(os_error(errno, fmt::format("cannot create index {}", path)));
  IndexHeader header;
  make_index_header(header, first_sequence);
  const std::uint64_t bytes = sizeof header + entries.size() * sizeof(IndexEntry);
  int err = pwrite_all(fd, &header, sizeof header, 0);
  if (err == 0 && !entries.empty()) {
    err = pwrite_all(fd, entries.data(), entries.size() * sizeof(IndexEntry), sizeof header);
  }
  if (err == 0 && ::ftruncate(fd, static_cast<off_t>(bytes)) != 0) err = errno;
  if (err != 0) {
    ::close(fd);
    return tl::unexpected(os_error(err, fmt::format("cannot write index {}", path)));
  }
  return fd;
}

std::optional<SegmentHead> read_segment_head(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  SegmentHead head{};
  RecordHeader first{};
  const bool have_header = ::pread(fd, &head.header, sizeof head.header, 0) ==
                           static_cast<ssize_t>(sizeof head.header);
  const bool have_first =
      ::pread(fd, &first, sizeof first, kSegmentHeaderSize) == static_cast<ssize_t>(sizeof first);
  ::close(fd);
  if (!have_header || check_segment_header(head.header)) return std::nullopt;
  if (have_first && !check_record_fields(first) &&
      first.type == static_cast<std::uint16_t>(RecordType::data)) {
    head.first_data_time_ns = first.timestamp_ns;
  }
  return head;
}

std::optional<std::uint64_t> journal_incarnation(const std::string& dir) {
  const auto listing = list_directory(dir);
  if (!listing || listing->segments.empty()) return std::nullopt;
  const auto head = read_segment_head(join_path(dir, segment_file_name(listing->segments.back())));
  if (!head) return std::nullopt;
  return head->header.channel_incarnation;
}

Result<void> remove_file(const std::string& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return tl::unexpected(os_error(errno, fmt::format("cannot remove {}", path)));
  }
  return {};
}

}  // namespace shmbus::journal
