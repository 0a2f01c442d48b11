#include "ipc/group_segment.hpp"

#include <dirent.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstring>

#include "ipc/channel.hpp"
#include "ipc/channel_access.hpp"
#include "ipc/process.hpp"

namespace shmbus::detail {

std::string group_object_prefix(std::string_view channel, std::uint64_t incarnation) {
  return fmt::format("{}.group.", control_object_name(channel, incarnation));
}

std::string group_object_name(std::string_view channel, std::uint64_t incarnation,
                              std::string_view group) {
  return group_object_prefix(channel, incarnation) + std::string(group);
}

Result<void> check_group_name(std::string_view group) {
  bool ok = !group.empty() && group.size() < kGroupNameSize && group.front() != '.' &&
            group.front() != '-';
  for (char ch : group) {
    ok = ok && ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                ch == '.' || ch == '_' || ch == '-');
  }
  if (!ok) {
    return tl::unexpected(Error{
        ErrorCode::invalid_argument,
        fmt::format("bad group name '{}': use 1-{} of [A-Za-z0-9._-], not starting with '.' or "
                    "'-'",
                    group, kGroupNameSize - 1)});
  }
  return {};
}

Result<void> check_group_options(const GroupOptions& o) {
  auto bad = [](std::string what) {
    return tl::unexpected(Error{ErrorCode::invalid_argument, std::move(what)});
  };
  if (o.policy != Policy::block && o.policy != Policy::spill) {
    return bad(fmt::format("group policy must be block or spill, not {}", to_string(o.policy)));
  }
  if (o.window < kMinGroupWindow || o.window > kMaxGroupWindow || !std::has_single_bit(o.window)) {
    return bad(fmt::format("group window {} must be a power of two from {} to {}", o.window,
                           kMinGroupWindow, kMaxGroupWindow));
  }
  if (o.max_attempts < 1 || o.max_attempts > kMaxGroupAttempts) {
    return bad(fmt::format("max_attempts {} is out of range (1 to {})", o.max_attempts,
                           kMaxGroupAttempts));
  }
  if (o.ack_timeout < std::chrono::milliseconds(1) || o.ack_timeout > std::chrono::hours(24)) {
    return bad(fmt::format("ack_timeout {} ns is out of range (1 ms to 24 h)",
                           o.ack_timeout.count()));
  }
  if (o.dead_letter_channel.size() >= kGroupChannelNameSize) {
    return bad(fmt::format("dead-letter channel name '{}' is too long", o.dead_letter_channel));
  }
  return {};
}

namespace {

std::atomic<std::uint64_t> staging_serial{0};

// A NUL-terminated name field read from shared memory: bounded, never trusted to hold a NUL.
std::string name_field(const char* field, std::size_t size) {
  return std::string(field, strnlen(field, size));
}

void format_group(void* base, std::size_t size, std::uint64_t incarnation, std::string_view group,
                  const GroupOptions& o, const std::string& dead_letter_channel, GroupStart start) {
  GroupHeader& h = group_header(base);
  h.magic = kGroupMagic;
  h.version = kGroupVersion;
  h.header_size = sizeof(GroupHeader);
  h.layout_fingerprint = group_layout_fingerprint();
  h.incarnation = incarnation;
  h.segment_size = size;
  h.window = o.window;
  h.max_members = kMaxGroupMembers;
  h.ack_timeout_ns = o.ack_timeout.count();
  h.max_attempts = o.max_attempts;
  h.policy = static_cast<std::uint8_t>(o.policy);
  h.keyed = o.keyed ? 1 : 0;
  h.created_ns = realtime_ns();
  h.start_sequence = o.start == StartFrom::sequence ? o.start_sequence : 0;
  std::memcpy(h.group, group.data(), group.size());
  std::memcpy(h.dead_letter_channel, dead_letter_channel.data(), dead_letter_channel.size());
  h.dispatch = GroupPair{start.position, start.sequence};
  h.floor = GroupPair{start.position, start.sequence};
  // release: everything above (and the zeroed arrays) is visible to whoever acquires `ready`.
  h.ready.store(kGroupReady, std::memory_order_release);
}

}  // namespace

Result<GroupSettings> validate_group(const ShmSegment& segment, std::uint64_t incarnation,
                                     const std::string& where) {
  auto fail = [&](ErrorCode code, const std::string& what) {
    return tl::unexpected(Error{code, fmt::format("{}: {}", where, what)});
  };
  if (segment.size() < sizeof(GroupHeader)) {
    return fail(ErrorCode::corrupt, fmt::format("group object is too small ({} bytes)",
                                                segment.size()));
  }
  const GroupHeader& h = group_header(segment.base());
  if (h.magic != kGroupMagic) return fail(ErrorCode::corrupt, "group object has a bad magic");
  if (h.version != kGroupVersion || h.layout_fingerprint != group_layout_fingerprint() ||
      h.header_size != sizeof(GroupHeader)) {
    return fail(ErrorCode::version_mismatch,
                fmt::format("group layout version {} (fingerprint {:016x}) differs from this "
                            "build's {} ({:016x})",
                            h.version, h.layout_fingerprint, kGroupVersion,
                            group_layout_fingerprint()));
  }
  // acquire: pairs with the creator's release of `ready`; the settings below were written before.
  if (h.ready.load(std::memory_order_acquire) != kGroupReady) {
    return fail(ErrorCode::corrupt, "group object is not ready (its creator died building it)");
  }
  if (h.incarnation != incarnation) {
    return fail(ErrorCode::corrupt, "group object belongs to another incarnation of the channel");
  }
  // Each setting is read once into `s` and only the copy is checked and used.
  GroupSettings s;
  s.window = h.window;
  s.ack_timeout_ns = h.ack_timeout_ns;
  s.max_attempts = h.max_attempts;
  const std::uint8_t policy = h.policy;
  const std::uint8_t keyed = h.keyed;
  const std::uint32_t members = h.max_members;
  const std::uint64_t declared_size = h.segment_size;
  if (s.window < kMinGroupWindow || s.window > kMaxGroupWindow || !std::has_single_bit(s.window) ||
      members != kMaxGroupMembers || declared_size != group_segment_size(s.window) ||
      segment.size() < declared_size) {
    return fail(ErrorCode::corrupt,
                fmt::format("group object declares window {}, {} members and {} bytes; the "
                            "mapping has {}",
                            s.window, members, declared_size, segment.size()));
  }
  if (s.max_attempts < 1 || s.max_attempts > kMaxGroupAttempts || s.ack_timeout_ns < 1'000'000 ||
      s.ack_timeout_ns > std::int64_t{24} * 3600 * 1'000'000'000 ||
      (policy != static_cast<std::uint8_t>(Policy::block) &&
       policy != static_cast<std::uint8_t>(Policy::spill)) ||
      keyed > 1) {
    return fail(ErrorCode::corrupt, "group object declares settings out of range");
  }
  s.policy = static_cast<Policy>(policy);
  s.keyed = keyed == 1;
  s.group = name_field(h.group, sizeof h.group);
  s.dead_letter_channel = name_field(h.dead_letter_channel, sizeof h.dead_letter_channel);
  return s;
}

Result<ShmSegment> open_or_create_group(const std::string& name, std::uint64_t incarnation,
                                        std::string_view group, const GroupOptions& options,
                                        const std::string& dead_letter_channel, GroupStart start,
                                        unsigned mode, std::uint32_t gid) {
  for (int attempt = 0; attempt < 50; ++attempt) {
    auto existing = ShmSegment::open(name, true, true);
    if (existing) return existing;
    if (existing.error().code != ErrorCode::not_found) return existing;
    // Built under a private name, then linked: a joiner never maps a half-formatted group. The
    // name is private to this call, not just to this process: threads creating the group at once
    // would otherwise remove each other's staging object, or link one another's and keep a
    // mapping of an object nobody else shares.
    // relaxed: only a unique number; nothing is published through it.
    const std::uint64_t serial = staging_serial.fetch_add(1, std::memory_order_relaxed);
    const std::string staging = fmt::format("{}.tmp.{}.{}", name, ::getpid(), serial);
    ShmSegment::remove(staging);
    const std::size_t size = group_segment_size(options.window);
    // The channel's control segment's mode and group: with another group than ours, created
    // private first and given its group and mode after (see build_control in ipc/channel.cpp).
    const bool other_group = static_cast<std::uint32_t>(::getegid()) != gid;
    auto created = ShmSegment::create(staging, size, other_group ? (mode & 0700) : mode);
    if (!created) return created;
    if (other_group) {
      if (auto given = give_to_group(staging, gid, mode); !given) {
        ShmSegment::remove(staging);
        return tl::unexpected(given.error());
      }
    }
    format_group(created->base(), size, incarnation, group, options, dead_letter_channel, start);
    auto linked = ShmSegment::link(staging, name);
    ShmSegment::remove(staging);
    if (!linked) return tl::unexpected(linked.error());
    if (*linked) return created;
    // Another member created it first: open theirs.
  }
  return tl::unexpected(Error{ErrorCode::busy, fmt::format("group object {}: could not be created "
                                                           "or opened (it keeps disappearing)",
                                                           name)});
}

std::vector<std::string> list_group_names(std::string_view channel, std::uint64_t incarnation) {
  std::vector<std::string> names;
  const std::string prefix = group_object_prefix(channel, incarnation);
  DIR* dir = ::opendir("/dev/shm");
  if (dir == nullptr) return names;
  while (const dirent* e = ::readdir(dir)) {
    const std::string_view n(e->d_name);
    if (n.size() > prefix.size() && n.substr(0, prefix.size()) == prefix &&
        n.find(".tmp.") == std::string_view::npos) {
      names.emplace_back(n.substr(prefix.size()));
    }
  }
  ::closedir(dir);
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace shmbus::detail
