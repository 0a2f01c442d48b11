// The SIGBUS guard (shmbus/mapping_guard.hpp). Everything the handler does is async-signal-safe:
// open/read/close of /proc/self/maps, mmap, atomics on lock-free words, copies into static
// storage. Nothing is allocated in it and nothing unwinds.
#include "shmbus/mapping_guard.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <algorithm>
#include <mutex>

#include <fmt/format.h>

namespace shmbus::detail {
namespace {

constexpr char kObjectPrefix[] = "/dev/shm/shmbus.";
constexpr std::size_t kMaxPath = 256;

// What the handler recorded. `record_state` orders the path: the handler that moves it from empty to
// writing owns `path` until it stores recorded (release); take() reads the path only after an
// acquire load of recorded and hands the slot back by storing empty.
enum : int { kEmpty = 0, kWriting = 1, kRecorded = 2 };
std::atomic<int> record_state{kEmpty};
char recorded_path[kMaxPath];

static_assert(std::atomic<int>::is_always_lock_free);

// Ranges replaced by zeros: a thread that faulted there before another thread's handler replaced
// them finds an anonymous mapping when its own handler runs, and only needs to retry.
constexpr int kMaxZeroed = 64;
std::atomic<std::uintptr_t> zeroed_from[kMaxZeroed];
std::atomic<std::uintptr_t> zeroed_end[kMaxZeroed];  // 0: unused
std::atomic<int> zeroed_count{0};

bool already_zeroed(std::uintptr_t address) noexcept {
  // relaxed: an index bound only; each entry is published by its own end word.
  const int n = std::min(zeroed_count.load(std::memory_order_relaxed), kMaxZeroed);
  for (int i = 0; i < n; ++i) {
    // acquire: pairs with note_zeroed's release of the end; the start stored before it is seen.
    const std::uintptr_t end = zeroed_end[i].load(std::memory_order_acquire);
    // relaxed: ordered by the acquire above.
    if (zeroed_from[i].load(std::memory_order_relaxed) <= address && address < end) return true;
  }
  return false;
}

// Returns the entry's index (to revoke it), or -1 when the table is full.
int note_zeroed(std::uintptr_t from, std::uintptr_t end) noexcept {
  // relaxed: reserves an index; the entry is published by its end word.
  const int i = zeroed_count.fetch_add(1, std::memory_order_relaxed);
  if (i >= kMaxZeroed) return -1;
  zeroed_from[i].store(from, std::memory_order_relaxed);  // relaxed: published below
  // release: a handler that acquires the end sees the start.
  zeroed_end[i].store(end, std::memory_order_release);
  return i;
}

std::mutex install_mutex;  // guards the three below; never taken in the handler
int live_guards = 0;
struct sigaction previous_action;
std::uintptr_t page_size = 4096;  // read at install: sysconf is not async-signal-safe

// One line of /proc/self/maps: "start-end perms offset dev inode   path".
struct MapsLine {
  std::uintptr_t start = 0;
  std::uintptr_t end = 0;
  bool writable = false;
  char path[kMaxPath] = {};
};

std::uintptr_t parse_hex(const char*& p) noexcept {
  std::uintptr_t v = 0;
  for (;; ++p) {
    const char c = *p;
    if (c >= '0' && c <= '9') {
      v = v * 16 + static_cast<std::uintptr_t>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      v = v * 16 + static_cast<std::uintptr_t>(c - 'a' + 10);
    } else {
      return v;
    }
  }
}

// Parses one NUL-terminated line; false if it is not in the expected form.
bool parse_line(const char* p, MapsLine& out) noexcept {
  out.start = parse_hex(p);
  if (*p++ != '-') return false;
  out.end = parse_hex(p);
  if (*p++ != ' ') return false;
  if (p[0] == '\0' || p[1] == '\0') return false;
  out.writable = p[1] == 'w';
  // Skip perms, offset, dev, inode: four fields, then the spaces before the path.
  for (int field = 0; field < 4; ++field) {
    while (*p != '\0' && *p != ' ') ++p;
    while (*p == ' ') ++p;
  }
  std::size_t n = 0;
  while (p[n] != '\0' && n + 1 < kMaxPath) {
    out.path[n] = p[n];
    ++n;
  }
  out.path[n] = '\0';
  // An object unlinked meanwhile is listed as "PATH (deleted)".
  constexpr char kDeleted[] = " (deleted)";
  constexpr std::size_t kDeletedLength = sizeof kDeleted - 1;
  if (n >= kDeletedLength && std::memcmp(out.path + n - kDeletedLength, kDeleted, kDeletedLength) == 0) {
    out.path[n - kDeletedLength] = '\0';
  }
  return true;
}

// Finds the mapping that holds `address`. Reads /proc/self/maps in blocks, one line at a time.
bool find_mapping(std::uintptr_t address, MapsLine& out) noexcept {
  const int fd = ::open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char block[4096];
  char line[kMaxPath + 128];
  std::size_t line_length = 0;
  bool found = false;
  for (;;) {
    const ssize_t got = ::read(fd, block, sizeof block);
    if (got <= 0) break;
    for (ssize_t i = 0; i < got && !found; ++i) {
      if (block[i] != '\n') {
        if (line_length + 1 < sizeof line) line[line_length++] = block[i];  // long paths: cut
        continue;
      }
      line[line_length] = '\0';
      line_length = 0;
      MapsLine candidate;
      if (parse_line(line, candidate) && candidate.start <= address && address < candidate.end) {
        out = candidate;
        found = true;
      }
    }
    if (found) break;
  }
  ::close(fd);
  return found;
}

void record(const char* path) noexcept {
  int expected = kEmpty;
  // acq_rel: winning the slot excludes other handlers (and a concurrent take) from the path.
  if (!record_state.compare_exchange_strong(expected, kWriting, std::memory_order_acq_rel)) return;
  std::size_t n = 0;
  for (; path[n] != '\0' && n + 1 < kMaxPath; ++n) recorded_path[n] = path[n];
  recorded_path[n] = '\0';
  // release: take() that acquires kRecorded sees the whole path.
  record_state.store(kRecorded, std::memory_order_release);
}

// Hands the signal to whatever was installed before us, as if we were not there.
void forward(int signal, siginfo_t* info, void* context) noexcept {
  if ((previous_action.sa_flags & SA_SIGINFO) != 0 && previous_action.sa_sigaction != nullptr) {
    previous_action.sa_sigaction(signal, info, context);
    return;
  }
  if (previous_action.sa_handler != SIG_DFL && previous_action.sa_handler != SIG_IGN &&
      previous_action.sa_handler != nullptr) {
    previous_action.sa_handler(signal);
    return;
  }
  // The default action: reinstall it; the faulting access is retried and ends the process.
  struct sigaction fallback {};
  fallback.sa_handler = SIG_DFL;
  ::sigemptyset(&fallback.sa_mask);
  ::sigaction(SIGBUS, &fallback, nullptr);
}

void on_sigbus(int signal, siginfo_t* info, void* context) {
  const int saved_errno = errno;
  if (info != nullptr && info->si_code == BUS_ADRERR) {
    const auto address = reinterpret_cast<std::uintptr_t>(info->si_addr);
    MapsLine mapping;
    const bool mapped = find_mapping(address, mapping);
    // Zeros already (another thread's handler): retry. Only for an anonymous mapping: an entry
    // whose range has since been unmapped and mapped to another object is stale.
    if (mapped && mapping.path[0] == '\0' && already_zeroed(address)) {
      errno = saved_errno;
      return;
    }
    if (mapped && std::strncmp(mapping.path, kObjectPrefix, sizeof kObjectPrefix - 1) == 0) {
      const std::uintptr_t from = address & ~(page_size - 1);
      const int entry = note_zeroed(from, mapping.end);
      void* zeros = ::mmap(reinterpret_cast<void*>(from), mapping.end - from,
                           PROT_READ | (mapping.writable ? PROT_WRITE : 0),
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
      if (zeros != MAP_FAILED) {
        record(mapping.path);
        errno = saved_errno;
        return;  // the access is retried and reads zeros
      }
      // release: nobody may wait for zeros that will never come.
      if (entry >= 0) zeroed_end[entry].store(0, std::memory_order_release);
    }
  }
  errno = saved_errno;
  forward(signal, info, context);
}

}  // namespace

MappingGuard::MappingGuard() {
  std::lock_guard lock(install_mutex);
  if (live_guards++ > 0) return;
  page_size = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  struct sigaction action {};
  action.sa_sigaction = on_sigbus;
  action.sa_flags = SA_SIGINFO;
  ::sigemptyset(&action.sa_mask);
  ::sigaction(SIGBUS, &action, &previous_action);
}

MappingGuard::~MappingGuard() {
  std::lock_guard lock(install_mutex);
  if (--live_guards > 0) return;
  ::sigaction(SIGBUS, &previous_action, nullptr);
}

bool MappingGuard::caught() noexcept {
  // acquire: as in take().
  return record_state.load(std::memory_order_acquire) == kRecorded;
}

std::optional<Truncation> MappingGuard::take() {
  // acquire: pairs with record()'s release; the path is complete.
  if (record_state.load(std::memory_order_acquire) != kRecorded) return std::nullopt;
  Truncation t{std::string(recorded_path)};
  // release: the path is read before the slot is handed back to the handler.
  record_state.store(kEmpty, std::memory_order_release);
  return t;
}

std::string describe(const Truncation& truncation) {
  const std::string& path = truncation.object;
  std::string channel = path.substr(std::min(path.size(), sizeof kObjectPrefix - 1));
  if (const auto ctl = channel.find(".ctl."); ctl != std::string::npos) channel.resize(ctl);
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return fmt::format(
        "channel '{}': its shared-memory object {} was truncated by another process (and is "
        "gone now)",
        channel, path);
  }
  return fmt::format(
      "channel '{}': its shared-memory object {} was truncated to {} bytes by another process",
      channel, path, st.st_size);
}

}  // namespace shmbus::detail
