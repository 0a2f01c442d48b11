#include "tests/peer/keyed_member.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iterator>

#include "tests/peer/peer_output.hpp"

namespace shmbus::test::peer {
namespace {

using Clock = std::chrono::steady_clock;

std::string str(std::uint64_t v) { return std::to_string(v); }

// Whether process `pid` may still touch the table: it exists and is not a zombie (a member killed
// with -9 and not yet reaped by the test is a zombie; it will never clear its mark).
bool live(std::uint64_t pid) {
  if (pid == 0 || pid > 0x3fffff) return false;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto paren = text.rfind(')');
  if (paren == std::string::npos || paren + 2 >= text.size()) return false;
  const char state = text[paren + 2];
  return state != 'Z' && state != 'X' && state != 'x';
}

std::atomic_ref<std::uint64_t> word(std::uint64_t& w) { return std::atomic_ref<std::uint64_t>(w); }

}  // namespace

KeyedWork::~KeyedWork() {
  if (map_ != nullptr) ::munmap(map_, bytes_);
}

bool KeyedWork::open(const std::string& path, std::uint32_t keys, std::uint32_t producer,
                     const SizeRule& sizes, std::string& error) {
  if (keys == 0 || keys > (1U << 20)) {
    error = "--keys " + str(keys) + " is out of range (1 to 2^20)";
    return false;
  }
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    error = "cannot open the key table " + path + ": " + std::strerror(errno);
    return false;
  }
  struct stat st{};
  const std::size_t want = key_table_bytes(keys);
  if (::fstat(fd, &st) != 0 || static_cast<std::size_t>(st.st_size) != want) {
    ::close(fd);
    error = "the key table " + path + " is " + str(static_cast<std::uint64_t>(st.st_size)) +
            " bytes, not the " + str(want) + " of " + str(keys) + " keys";
    return false;
  }
  void* m = ::mmap(nullptr, want, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ::close(fd);
  if (m == MAP_FAILED) {
    error = "cannot map the key table " + path + ": " + std::strerror(errno);
    return false;
  }
  map_ = m;
  bytes_ = want;
  header_ = static_cast<KeyTableHeader*>(m);
  slots_ = reinterpret_cast<KeySlot*>(static_cast<std::byte*>(m) + sizeof(KeyTableHeader));
  // relaxed (both): written by the test before any member started (fork/exec orders them).
  if (word(header_->magic).load(std::memory_order_relaxed) != kKeyTableMagic ||
      word(header_->keys).load(std::memory_order_relaxed) != keys) {  // relaxed: see above
    error = "the key table " + path + " has the wrong magic or key count";
    return false;
  }
  keys_ = keys;
  producer_ = producer;
  sizes_ = sizes;
  pid_ = static_cast<std::uint64_t>(::getpid());
  return true;
}

void KeyedWork::violation(std::uint64_t& counter, const std::string& what) {
  // relaxed: a count the test reads once every member has ended.
  word(counter).fetch_add(1, std::memory_order_relaxed);
  if (++violations_ <= 20) say("VIOLATION " + what);
}

bool KeyedWork::process(const GroupMessage& m, std::uint64_t work_ns) {
  // 1. The payload and the key are exactly those of the record's counter.
  if (m.sequence == 0) return false;
  const std::uint64_t counter = m.sequence - 1;
  const KeyedRecord r = keyed_record(counter, keys_);
  const std::vector<std::byte> want = keyed_payload(producer_, counter, keys_, sizes_);
  const std::string name = key_name(r.key);
  if (m.payload.size() != want.size() ||
      std::memcmp(m.payload.data(), want.data(), want.size()) != 0 ||
      m.key.size() != name.size() || std::memcmp(m.key.data(), name.data(), name.size()) != 0 ||
      m.message_type != kKeyedType) {
    return false;
  }
  const std::string what = "key=" + str(r.key) + " seq=" + str(m.sequence) +
                           " index=" + str(r.index) + " attempt=" + str(m.attempt);
  KeySlot& slot = slots_[r.key];

  // 2. Mark the key busy. acq_rel (both CASes below): acquire, so that `done` as the previous
  // owner left it (stored before its clearing CAS, a release) is what step 3 reads; release, so
  // that our own mark is ordered before anything we store under it.
  bool owned = false;
  std::uint64_t seen = 0;
  while (!owned) {
    if (word(slot.owner).compare_exchange_strong(seen, pid_, std::memory_order_acq_rel)) {  // acq_rel: see above
      owned = true;
    } else if (seen == pid_) {
      violation(header_->busy_violations, "busy " + what + ": marked by this member already");
      break;
    } else if (live(seen)) {
      violation(header_->busy_violations, "busy " + what + ": held by live pid " + str(seen));
      break;
    } else {
      // A member killed mid-record: its mark stays. Take it over (the CAS fails, and the loop
      // looks again, if someone else changed it meanwhile).
      if (word(slot.owner).compare_exchange_strong(seen, pid_, std::memory_order_acq_rel)) {
        owned = true;
        ++takeovers_;
        // relaxed: a statistic.
        word(header_->takeovers).fetch_add(1, std::memory_order_relaxed);
      }
    }
  }

  // 3. The key's order. acquire: the previous owner's store, ordered before its mark was cleared
  // (or before its death, for a takeover: the group saw it dead before redelivering).
  const std::uint64_t done = word(slot.done).load(std::memory_order_acquire);
  if (r.index == done) {
    // The key's next record.
  } else if (r.index + 1 == done && m.attempt > 1) {
    // relaxed: a statistic.
    word(header_->redeliveries).fetch_add(1, std::memory_order_relaxed);
  } else {
    violation(header_->order_violations,
              "order " + what + ": the key has " + str(done) + " records done");
  }

  // 4. The work, while holding the key.
  if (work_ns != 0) {
    const auto until = Clock::now() + std::chrono::nanoseconds(work_ns);
    while (Clock::now() < until) {
    }
  }

  // 5. Record it done (release: the next owner's acquire above sees it), then clear the mark.
  if (owned) {
    word(slot.done).store(r.index + 1, std::memory_order_release);  // release: see above
    std::uint64_t mine = pid_;
    // release: the store of `done` comes before the key looks free.
    if (!word(slot.owner).compare_exchange_strong(mine, 0, std::memory_order_release)) {
      violation(header_->busy_violations,
                "busy " + what + ": pid " + str(mine) + " took the key while this member held it");
    }
  }
  return true;
}

}  // namespace shmbus::test::peer
