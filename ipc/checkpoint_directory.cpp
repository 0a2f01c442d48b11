// CheckpointDirectory (include/shmbus/exactly_once.hpp): the exactly-once helper's file store, one
// StateCheckpoint per member in a directory the whole group shares.
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "journal/segment_files.hpp"
#include "shmbus/exactly_once.hpp"

namespace shmbus {

namespace {

constexpr std::string_view kCheckpointSuffix = ".ckpt";

bool valid_name(const std::string& name) {
  if (name.empty() || name.size() > 128 || name.front() == '.') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

}  // namespace

Result<CheckpointDirectory> CheckpointDirectory::open(const std::string& directory,
                                                      const std::string& name) {
  if (!valid_name(name)) {
    return tl::unexpected(Error{ErrorCode::invalid_argument,
                                fmt::format("exactly-once member name '{}' must be 1 to 128 "
                                            "characters of [A-Za-z0-9._-], not starting with '.'",
                                            name)});
  }
  CheckpointDirectory d;
  d.directory_ = directory.empty() ? std::string(".") : directory;
  d.file_name_ = name + std::string(kCheckpointSuffix);
  auto checkpoint = StateCheckpoint::open(journal::join_path(d.directory_, d.file_name_));
  if (!checkpoint) return tl::unexpected(checkpoint.error());
  d.checkpoint_ = std::move(*checkpoint);

  const std::string lock = journal::join_path(d.directory_, name + ".lock");
  d.lock_fd_ = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
  if (d.lock_fd_ < 0) {
    return tl::unexpected(journal::os_error(errno, fmt::format("cannot open lock file {}", lock)));
  }
  while (::flock(d.lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EINTR) continue;
    if (errno == EWOULDBLOCK) {
      return tl::unexpected(Error{ErrorCode::busy,
                                  fmt::format("exactly-once member '{}' is in use by another live "
                                              "process ({} is locked)", name, lock)});
    }
    return tl::unexpected(journal::os_error(errno, fmt::format("cannot lock {}", lock)));
  }
  return d;
}

CheckpointDirectory::CheckpointDirectory(CheckpointDirectory&& other) noexcept
    : directory_(std::move(other.directory_)),
      file_name_(std::move(other.file_name_)),
      checkpoint_(std::move(other.checkpoint_)),
      lock_fd_(std::exchange(other.lock_fd_, -1)),
      own_(std::move(other.own_)),
      others_(std::move(other.others_)),
      others_through_(other.others_through_) {}

CheckpointDirectory& CheckpointDirectory::operator=(CheckpointDirectory&& other) noexcept {
  if (this != &other) {
    if (lock_fd_ >= 0) ::close(lock_fd_);
    directory_ = std::move(other.directory_);
    file_name_ = std::move(other.file_name_);
    checkpoint_ = std::move(other.checkpoint_);
    lock_fd_ = std::exchange(other.lock_fd_, -1);
    own_ = std::move(other.own_);
    others_ = std::move(other.others_);
    others_through_ = other.others_through_;
  }
  return *this;
}

// Closing the descriptor drops the flock (the lock file stays: removing it would race with a
// successor that has just opened it).
CheckpointDirectory::~CheckpointDirectory() {
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

Result<CheckpointData> CheckpointDirectory::load() {
  auto data = checkpoint_.load();
  if (data) own_ = data->applied;
  return data;
}

Result<void> CheckpointDirectory::begin_lookup() {
  others_.clear();
  others_through_ = 0;
  DIR* dir = ::opendir(directory_.c_str());
  if (dir == nullptr) {
    return tl::unexpected(
        journal::os_error(errno, fmt::format("cannot list checkpoint directory {}", directory_)));
  }
  std::vector<std::string> files;
  errno = 0;
  while (const dirent* entry = ::readdir(dir)) {
    const std::string_view n = entry->d_name;
    // "<name>.ckpt" of another member; temporaries ("<name>.ckpt.tmp") and locks are not.
    if (n.size() > kCheckpointSuffix.size() && n.ends_with(kCheckpointSuffix) && n.front() != '.' &&
        n != file_name_) {
      files.emplace_back(n);
    }
    errno = 0;
  }
  const int err = errno;
  ::closedir(dir);
  if (err != 0) {
    return tl::unexpected(
        journal::os_error(err, fmt::format("cannot list checkpoint directory {}", directory_)));
  }
  for (const std::string& name : files) {
    auto data = read_checkpoint(journal::join_path(directory_, name));
    if (!data) return tl::unexpected(data.error());
    others_through_ = std::max(others_through_, data->applied.through);
    others_.insert(others_.end(), data->applied.sequences.begin(), data->applied.sequences.end());
  }
  std::sort(others_.begin(), others_.end());
  return {};
}

Result<bool> CheckpointDirectory::applied(std::uint64_t sequence) {
  return own_.covers(sequence) || sequence < others_through_ ||
         std::binary_search(others_.begin(), others_.end(), sequence);
}

Result<void> CheckpointDirectory::commit(std::span<const std::byte> state,
                                         const AppliedSet& applied) {
  auto committed = checkpoint_.commit(state, applied);
  // Even after an error the new file may be in place (the directory's fsync failed); own_ keeps
  // the older set, which is a subset for every sequence still deliverable: the caller retries.
  if (committed) own_ = applied;
  return committed;
}

}  // namespace shmbus
