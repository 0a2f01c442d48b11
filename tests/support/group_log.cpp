#include "tests/support/group_log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

namespace shmbus::test {

GroupLogWriter::~GroupLogWriter() {
  if (fd_ >= 0) ::close(fd_);
}

bool GroupLogWriter::open(const std::string& path) {
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  return fd_ >= 0;
}

bool GroupLogWriter::append(std::span<const GroupLogEntry> entries) {
  const char* p = reinterpret_cast<const char*>(entries.data());
  std::size_t left = entries.size_bytes();
  while (left > 0) {
    const ssize_t n = ::write(fd_, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  return true;
}

std::optional<std::vector<GroupLogEntry>> read_group_log(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<GroupLogEntry> entries(bytes.size() / sizeof(GroupLogEntry));
  if (!entries.empty()) {
    std::memcpy(entries.data(), bytes.data(), entries.size() * sizeof(GroupLogEntry));
  }
  return entries;
}

std::vector<GroupLogEntry> read_group_logs(const std::string& dir) {
  std::vector<GroupLogEntry> all;
  for (const auto& f : std::filesystem::directory_iterator(dir)) {
    if (f.path().extension() != ".log") continue;
    if (auto one = read_group_log(f.path().string())) all.insert(all.end(), one->begin(), one->end());
  }
  return all;
}

}  // namespace shmbus::test
