// The journal section of the control segment: attaching a journaler, publishing its progress,
// and reading both back. Everything here is a slow path except publish_journal_progress.
#include "ipc/journal_link.hpp"

#include <fmt/format.h>

#include <atomic>
#include <cstring>
#include <iterator>

namespace shmbus::detail {
namespace {

// journal_dir is shared memory other processes read while we may write it: atomic byte accesses
// (relaxed; the seqlock around them orders them).
void store_dir(ControlHeader& ctl, const std::string& dir) noexcept {
  for (std::size_t i = 0; i < kJournalDirSize; ++i) {
    const char c = i < dir.size() ? dir[i] : '\0';
    // relaxed: ordered by the seqlock's fence and release increment around this loop.
    std::atomic_ref<char>(ctl.journal_dir[i]).store(c, std::memory_order_relaxed);
  }
}

std::string load_dir(ControlHeader& ctl) {
  char copy[kJournalDirSize];
  for (std::size_t i = 0; i < kJournalDirSize; ++i) {
    // relaxed: ordered by the seqlock's acquire version load and fence around this loop.
    copy[i] = std::atomic_ref<char>(ctl.journal_dir[i]).load(std::memory_order_relaxed);
  }
  copy[kJournalDirSize - 1] = '\0';  // a garbage directory is still a bounded string
  return std::string(copy);
}

// A consistent {owner, dir} pair, or nothing when no journaler is (fully) attached.
std::optional<std::pair<std::uint64_t, std::string>> read_owner_and_dir(ControlHeader& ctl) {
  for (int attempt = 0; attempt < 1000; ++attempt) {
    // acquire: a settled owner word (no claiming bit) was release-stored after its directory.
    const std::uint64_t owner = ctl.journal_owner.load(std::memory_order_acquire);
    if (owner == 0 || (owner & kJournalClaiming) != 0) return std::nullopt;
    // acquire: the byte loads below come after it (seqlock read side).
    const std::uint64_t version = ctl.journal_dir_version.load(std::memory_order_acquire);
    if ((version & 1) != 0) continue;  // a directory is being written right now
    std::string dir = load_dir(ctl);
    // acquire fence: the byte loads above happen before the second look below; if a writer
    // changed any byte we read, its version bump (before its byte stores) is visible there.
    std::atomic_thread_fence(std::memory_order_acquire);
    // relaxed: ordered after the copy by the fence above.
    if (ctl.journal_dir_version.load(std::memory_order_relaxed) != version) continue;
    if (ctl.journal_owner.load(std::memory_order_relaxed) != owner) continue;  // relaxed: as above
    return std::pair{owner, std::move(dir)};
  }
  return std::nullopt;
}

// The directory alone, whoever owns it (0 too): the same seqlock read as read_owner_and_dir.
std::optional<std::string> read_dir(ControlHeader& ctl) {
  for (int attempt = 0; attempt < 1000; ++attempt) {
    // acquire: a detached journaler's release (CAS to 0) and an attached one's settled word were
    // both stored after its directory.
    const std::uint64_t owner = ctl.journal_owner.load(std::memory_order_acquire);
    if ((owner & kJournalClaiming) != 0) return std::nullopt;  // being rewritten right now
    // acquire: the byte loads below come after it (seqlock read side).
    const std::uint64_t version = ctl.journal_dir_version.load(std::memory_order_acquire);
    if ((version & 1) != 0) continue;
    std::string dir = load_dir(ctl);
    // acquire fence: as in read_owner_and_dir.
    std::atomic_thread_fence(std::memory_order_acquire);
    // relaxed: ordered after the copy by the fence above.
    if (ctl.journal_dir_version.load(std::memory_order_relaxed) != version) continue;
    if (dir.empty()) return std::nullopt;  // no journaler ever attached
    return dir;
  }
  return std::nullopt;
}

}  // namespace

Result<void> claim_journal(ChannelMapping& channel, const std::string& absolute_dir) {
  const std::string& name = channel.info().name;
  if (absolute_dir.empty() || absolute_dir[0] != '/') {
    return tl::unexpected(Error{ErrorCode::invalid_argument,
                                fmt::format("channel '{}': the journal directory '{}' is not an "
                                            "absolute path",
                                            name, absolute_dir)});
  }
  if (absolute_dir.size() >= kJournalDirSize) {
    return tl::unexpected(Error{ErrorCode::invalid_argument,
                                fmt::format("channel '{}': the journal directory is {} bytes long; "
                                            "at most {} fit",
                                            name, absolute_dir.size(), kJournalDirSize - 1)});
  }
  ControlHeader& ctl = channel.control();
  const ProcessId self = self_process();
  const std::uint64_t mine = pack_process(self);
  for (int attempt = 0; attempt < 100; ++attempt) {
    // acquire: pairs with the release of the previous owner's attach or detach.
    std::uint64_t owner = ctl.journal_owner.load(std::memory_order_acquire);
    if (owner != 0) {
      const ProcessId holder = unpack_process(owner & ~kJournalClaiming);
      if (holder.pid == self.pid || process_alive(holder)) {
        auto other = read_owner_and_dir(ctl);
        std::string message =
            fmt::format("channel '{}' already has a journaler: pid {}", name, holder.pid);
        if (other) fmt::format_to(std::back_inserter(message), " recording into {}", other->second);
        if (holder.pid == self.pid) fmt::format_to(std::back_inserter(message), " (this process)");
        return tl::unexpected(Error{ErrorCode::busy, std::move(message)});
      }
    }
    // acq_rel: the winner alone writes the directory; it saw the previous owner's last stores.
    if (!ctl.journal_owner.compare_exchange_strong(owner, mine | kJournalClaiming,
                                                   std::memory_order_acq_rel)) {  // acq_rel: above
      continue;
    }
    const bool same_dir = load_dir(ctl) == absolute_dir;
    // Seqlock write side. relaxed RMW then release fence: the version turns odd before any byte
    // changes, for a reader whose fence-ordered second look may see a new byte.
    ctl.journal_dir_version.fetch_add(1, std::memory_order_relaxed);  // relaxed: fenced below
    std::atomic_thread_fence(std::memory_order_release);  // release: odd version before the bytes
    store_dir(ctl, absolute_dir);
    // release: the bytes are written before the version turns even again.
    ctl.journal_dir_version.fetch_add(1, std::memory_order_release);
    if (!same_dir) {
      // relaxed: published by the owner word's release store below; progress in another
      // directory says nothing about this one.
      ctl.journal_written.store(0, std::memory_order_relaxed);
      ctl.journal_durable.store(0, std::memory_order_relaxed);  // relaxed: as above
    }
    // relaxed: a statistic.
    ctl.journal_heartbeat_ns.store(realtime_ns(), std::memory_order_relaxed);
    // release: whoever acquires the settled owner word sees the directory and progress above.
    ctl.journal_owner.store(mine, std::memory_order_release);
    return {};
  }
  return tl::unexpected(
      Error{ErrorCode::busy, fmt::format("channel '{}': cannot take the journal ownership", name)});
}

void publish_journal_progress(ChannelMapping& channel, std::uint64_t written,
                              std::uint64_t durable) noexcept {
  ControlHeader& ctl = channel.control();
  // release: the journaler saw these records' writes complete before this store; a reader that
  // acquires the value and then reads the files finds them (durable first: never above written
  // for a reader that loads written first).
  ctl.journal_durable.store(durable < written ? durable : written, std::memory_order_release);
  ctl.journal_written.store(written, std::memory_order_release);  // release: see above
  // relaxed: a statistic for tools.
  ctl.journal_heartbeat_ns.store(realtime_ns(), std::memory_order_relaxed);
}

void release_journal(ChannelMapping& channel) noexcept {
  std::uint64_t mine = pack_process(self_process());
  // release: our last progress stores are visible to whoever attaches next (acquire CAS).
  channel.control().journal_owner.compare_exchange_strong(mine, 0, std::memory_order_release);
}

std::optional<JournalLink> find_journal(const ChannelMapping& channel) {
  return find_journal(channel.channel_control());
}

std::optional<JournalLink> find_journal(const ControlHeader& control) {
  // Loads only (std::atomic_ref needs a non-const object, never stores here), so a read-only
  // mapping serves.
  ControlHeader& ctl = const_cast<ControlHeader&>(control);
  auto owner = read_owner_and_dir(ctl);
  if (!owner) return std::nullopt;
  JournalLink link;
  link.dir = std::move(owner->second);
  link.owner = unpack_process(owner->first);
  // acquire: as in publish_journal_progress; written first so that durable <= written holds.
  link.written = ctl.journal_written.load(std::memory_order_acquire);
  link.durable = ctl.journal_durable.load(std::memory_order_acquire);  // acquire: as above
  // Two separate loads: a report between them may have raised durable past our written.
  if (link.durable > link.written) link.durable = link.written;
  link.alive = process_alive(link.owner);
  return link;
}

std::optional<std::string> last_journal_dir(const ControlHeader& control) {
  // Loads only, as in find_journal: a read-only mapping serves.
  return read_dir(const_cast<ControlHeader&>(control));
}

}  // namespace shmbus::detail
