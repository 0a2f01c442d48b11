// read_channel_stats and friends (include/shmbus/stats.hpp): a snapshot of a channel through a
// read-only ChannelView. Every value written by a peer is checked before it is used.
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "ipc/bridge_segment.hpp"
#include "ipc/channel.hpp"
#include "ipc/channel_view.hpp"
#include "ipc/journal_link.hpp"
#include "shmbus/stats.hpp"

namespace shmbus {
namespace {

using detail::ConstControlRef;
using detail::ControlHeader;
using detail::ProducerSlot;
using detail::SlotState;
using detail::SubscriberSlot;

constexpr std::string_view kRingPrefix = "shmbus.";
// A creator makes the control segment before it links the ring: an object younger than this may be
// a channel being created right now, never a leftover.
constexpr auto kLeftoverMinAge = std::chrono::seconds(60);

bool young(const std::filesystem::directory_entry& entry) {
  std::error_code ec;
  const auto written = entry.last_write_time(ec);
  if (ec) return true;  // cannot tell: leave it
  return std::filesystem::file_time_type::clock::now() - written < kLeftoverMinAge;
}

bool valid_policy(std::uint8_t p) noexcept {
  return p == static_cast<std::uint8_t>(Policy::block) ||
         p == static_cast<std::uint8_t>(Policy::drop) ||
         p == static_cast<std::uint8_t>(Policy::spill);
}

// The slot's name, if it is NUL-terminated within its field and printable ASCII without spaces,
// as Subscriber::open requires (anything else is garbage, and must not reach a terminal or JSON).
std::optional<std::string> slot_name(const SubscriberSlot& s) {
  const char* end = static_cast<const char*>(std::memchr(s.name, '\0', sizeof s.name));
  if (end == nullptr) return std::nullopt;
  std::string name(s.name, end);
  for (const char c : name) {
    if (c <= ' ' || c > '~') return std::nullopt;
  }
  return name;
}

// A process taking a slot right now (state `claiming`) is attached as far as gc is concerned.
bool anyone_claiming(const ConstControlRef& ctl) {
  auto claiming_alive = [](std::uint64_t owner) {
    return detail::owner_state(owner) == SlotState::claiming &&
           detail::pid_exists(detail::owner_pid(owner));
  };
  // acquire (both loops): as in read_subscriber / read_producer; only the owner word is used.
  for (const SubscriberSlot& s : ctl.subscriber_slots_taken()) {
    if (claiming_alive(s.owner.load(std::memory_order_acquire))) return true;  // acquire: above
  }
  for (const ProducerSlot& p : ctl.producer_slots_taken()) {
    if (claiming_alive(p.owner.load(std::memory_order_acquire))) return true;  // acquire: above
  }
  return false;
}

SubscriberState state_of(const SubscriberStats& st, SlotState slot_state,
                         std::uint64_t capacity) noexcept {
  if (slot_state == SlotState::detached) return SubscriberState::detached;
  if (slot_state == SlotState::evicted) return SubscriberState::evicted;
  if (!st.alive) return SubscriberState::dead;
  if (st.policy != Policy::block && st.lag_bytes > capacity) return SubscriberState::lapped;
  if (st.lag_bytes >= capacity / 2) return SubscriberState::lagging;
  return SubscriberState::alive;
}

// One subscriber slot, or nothing when it is free or being filled in. `corrupt` is set for a slot
// whose fields no shmbus process writes.
std::optional<SubscriberStats> read_subscriber(const ConstControlRef& ctl, std::uint32_t index,
                                               const core::TailWord& head,
                                               std::uint64_t capacity, bool& corrupt) {
  const SubscriberSlot& s = ctl.subscriber_slots()[index];
  // acquire: the identity fields are filled in before the owner word's release store.
  const std::uint64_t owner = s.owner.load(std::memory_order_acquire);
  const SlotState slot_state = detail::owner_state(owner);
  switch (slot_state) {
    case SlotState::free:
    case SlotState::claiming:
      if (slot_state == SlotState::free && owner != 0) corrupt = true;
      return std::nullopt;
    case SlotState::active:
    case SlotState::detached:
    case SlotState::evicted:
    case SlotState::resuming:
      break;
    default:
      corrupt = true;
      return std::nullopt;
  }
  auto name = slot_name(s);
  if (!name || !valid_policy(s.policy)) {
    corrupt = true;
    return std::nullopt;
  }
  SubscriberStats st;
  st.slot = index;
  st.name = std::move(*name);
  st.policy = static_cast<Policy>(s.policy);
  // A resuming slot's identity still names the previous process: the new one is in the owner.
  if (slot_state == SlotState::resuming) {
    st.pid = detail::owner_pid(owner);
  } else {
    st.pid = s.pid;
    st.start_time = s.start_time;
  }
  st.alive = (slot_state == SlotState::active || slot_state == SlotState::resuming) &&
             detail::process_alive(detail::ProcessId{st.pid, st.start_time});
  st.attached_ns = s.attached_ns;
  // relaxed: statistics; each is a value the subscriber stored at some point, which is all a
  // snapshot promises.
  st.heartbeat_ns = s.heartbeat_ns.load(std::memory_order_relaxed);
  st.position = s.position.load(std::memory_order_relaxed);             // relaxed: as above
  st.next_sequence = s.next_sequence.load(std::memory_order_relaxed);   // relaxed: as above
  st.received = s.received.load(std::memory_order_relaxed);             // relaxed: as above
  st.lost = s.lost.load(std::memory_order_relaxed);                     // relaxed: as above
  st.spilled = s.spilled.load(std::memory_order_relaxed);               // relaxed: as above
  st.evictions = s.evictions.load(std::memory_order_relaxed);           // relaxed: as above
  st.lag_bytes = head.position > st.position ? head.position - st.position : 0;
  st.lag_messages = head.next_sequence > st.next_sequence && st.next_sequence != 0
                        ? head.next_sequence - st.next_sequence
                        : 0;
  st.state = state_of(st, slot_state, capacity);
  if ((s.flags & detail::kSlotLatencyHistogram) != 0) {
    st.latency = core::take_snapshot(ctl.latency_histogram(index));
  }
  return st;
}

// One producer slot's registration and counters (no /proc lookup: the caller checks liveness after
// its pass over the slots, which must be short, see read_producers).
std::optional<ProducerStats> read_producer(const ConstControlRef& ctl, std::uint32_t index,
                                           bool& corrupt) {
  const ProducerSlot& p = ctl.producer_slots()[index];
  // acquire: the start time is filled in before the owner word's release store.
  const std::uint64_t owner = p.owner.load(std::memory_order_acquire);
  if (owner == 0 || detail::owner_state(owner) == SlotState::claiming) return std::nullopt;
  if (detail::owner_state(owner) != SlotState::active) {
    corrupt = true;
    return std::nullopt;
  }
  ProducerStats st;
  st.slot = index;
  st.pid = detail::owner_pid(owner);
  st.start_time = p.start_time;
  st.attached_ns = p.attached_ns;
  // relaxed: statistics, as in read_subscriber.
  st.published = p.published.load(std::memory_order_relaxed);
  st.published_bytes = p.published_bytes.load(std::memory_order_relaxed);  // relaxed: as above
  st.claim_in_flight =
      p.in_flight.load(std::memory_order_relaxed) != detail::kNoClaim;  // relaxed: as above
  return st;
}

std::optional<JournalStats> read_journal(const ControlHeader& ctl) {
  if (auto link = detail::find_journal(ctl)) {
    JournalStats j;
    j.pid = link->owner.pid;
    j.alive = link->alive;
    j.dir = std::move(link->dir);
    j.written_sequence = link->written;
    j.durable_sequence = link->durable;
    // relaxed: a statistic.
    j.heartbeat_ns = ctl.journal_heartbeat_ns.load(std::memory_order_relaxed);
    return j;
  }
  // No journaler attached now; one that left keeps its last progress in the words.
  // acquire: as in find_journal.
  const std::uint64_t written = ctl.journal_written.load(std::memory_order_acquire);
  if (written == 0) return std::nullopt;
  JournalStats j;
  j.written_sequence = written;
  // acquire: as journal_written above.
  j.durable_sequence = std::min(written, ctl.journal_durable.load(std::memory_order_acquire));
  j.heartbeat_ns = ctl.journal_heartbeat_ns.load(std::memory_order_relaxed);  // relaxed: stat
  return j;
}

struct Retired {
  std::uint64_t published = 0;
  std::uint64_t bytes = 0;
  bool operator==(const Retired&) const = default;
};

Retired read_retired(const ControlHeader& ctl) noexcept {
  // acquire: pairs with add_retired's release; totals seen grown mean the leaving producer's
  // slot is seen freed, so it is not counted twice.
  return Retired{ctl.retired_published.load(std::memory_order_acquire),
                 ctl.retired_bytes.load(std::memory_order_acquire)};  // acquire: as above
}

// The producer slots and the channel's totals (the retired totals plus every slot's). A producer
// that leaves during the pass would be in neither: the totals are read again after the pass and
// the pass repeated if they moved, so the channel's counters never go backwards between reads.
void read_producers(const ConstControlRef& ctl, ChannelStats& st) {
  for (int attempt = 0; attempt < 8; ++attempt) {
    const Retired before = read_retired(ctl.header());
    st.producers.clear();
    st.corrupt_slots = 0;
    st.published_messages = before.published;
    st.published_bytes = before.bytes;
    const std::uint32_t taken = ctl.producer_slots_high_water();
    for (std::uint32_t i = 0; i < taken; ++i) {
      bool corrupt = false;
      if (auto p = read_producer(ctl, i, corrupt)) {
        st.published_messages += p->published;
        st.published_bytes += p->published_bytes;
        st.producers.push_back(*p);
      }
      st.corrupt_slots += corrupt ? 1 : 0;
    }
    if (read_retired(ctl.header()) == before) break;
  }
  for (ProducerStats& p : st.producers) {
    p.alive = detail::process_alive(detail::ProcessId{p.pid, p.start_time});
  }
}

}  // namespace

const char* to_string(SubscriberState state) noexcept {
  switch (state) {
    case SubscriberState::alive: return "alive";
    case SubscriberState::lagging: return "lagging";
    case SubscriberState::lapped: return "lapped";
    case SubscriberState::dead: return "dead";
    case SubscriberState::evicted: return "evicted";
    case SubscriberState::detached: return "detached";
  }
  return "unknown";
}

Result<ChannelStats> read_channel_stats(std::string_view channel) {
  auto view = detail::ChannelView::open(channel);
  if (!view) return tl::unexpected(view.error());
  const core::RingRef& ring = view->ring();
  const core::RingHeader& h = *ring.header;
  const ControlHeader& ctl = view->control();
  const ConstControlRef& control = view->control_ref();

  ChannelStats st;
  st.name = view->name();
  st.incarnation = h.incarnation;
  st.capacity = ring.capacity;
  st.max_message = ring.max_message;
  st.single_producer = (h.flags & core::kFlagSingleProducer) != 0;
  st.subscriber_slots = control.layout().subscriber_slots;
  st.producer_slots = control.layout().producer_slots;
  st.created_ns = h.created_ns;
  st.creator_pid = h.creator_pid;
  st.creator_alive = detail::process_alive(detail::ProcessId{h.creator_pid, h.creator_start_time});
  st.sampled_ns = detail::realtime_ns();
  st.sampled_monotonic_ns = detail::monotonic_ns();

  const core::TailWord head = ring.load_tail();
  st.head_position = head.position;
  st.head_sequence = head.next_sequence > 0 ? head.next_sequence - 1 : 0;
  // relaxed: statistics (see read_subscriber).
  st.back_pressure_events = ctl.back_pressure_events.load(std::memory_order_relaxed);
  st.evictions = ctl.evictions.load(std::memory_order_relaxed);                    // relaxed: stat
  st.abandoned_repaired = ctl.abandoned_repaired.load(std::memory_order_relaxed);  // relaxed: stat
  read_producers(control, st);
  bool corrupt = false;
  const std::uint32_t taken = control.subscriber_slots_high_water();
  for (std::uint32_t i = 0; i < taken; ++i) {
    corrupt = false;
    if (auto s = read_subscriber(control, i, head, ring.capacity, corrupt)) {
      st.subscribers.push_back(std::move(*s));
    }
    st.corrupt_slots += corrupt ? 1 : 0;
  }
  st.journal = read_journal(ctl);

  bool anyone = st.creator_alive || (st.journal && st.journal->alive);
  for (const ProducerStats& p : st.producers) anyone = anyone || p.alive;
  for (const SubscriberStats& s : st.subscribers) anyone = anyone || s.alive;
  // The single-producer owner may be between producer slots (taken before its slot).
  // acquire: pairs with the owner's CAS.
  if (const std::uint64_t owner = h.exclusive_pid.load(std::memory_order_acquire); owner != 0) {
    anyone = anyone || detail::process_alive(detail::unpack_process(owner));
  }
  st.abandoned = !anyone && !anyone_claiming(control);
  return st;
}

std::vector<std::string> list_channels() {
  std::vector<std::string> names;
  const std::filesystem::path dir = std::filesystem::path(detail::shm_path("x")).parent_path();
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string file = entry.path().filename().string();
    if (!file.starts_with(kRingPrefix)) continue;
    const std::string channel = file.substr(kRingPrefix.size());
    if (!detail::check_channel_name(channel)) continue;  // control segments, temporaries
    names.push_back(channel);
  }
  std::sort(names.begin(), names.end());
  return names;
}

namespace {

bool all_hex(std::string_view s) {
  return s.size() == 16 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// The parts of a shared-memory object's name after "shmbus.", when it has the exact shape of one
// of the library's non-ring objects: <channel>.tmp.<pid>.<16 hex> (a creator's temporary ring) or
// <channel>.ctl.<16 hex> (a control segment). A channel name may itself end in ".ctl" or ".tmp",
// so the shape is matched from the end.
struct ObjectName {
  bool temporary = false;
  std::string channel;
  std::string incarnation;  // 16 hex digits
  std::uint32_t pid = 0;    // temporaries only
  std::string_view what = "control segment";  // or the readers' registry or the use lock
};

std::optional<ObjectName> parse_incarnation_object(std::string_view rest);

// <channel>.ctl.<incarnation>, with ".readers" or ".lock" for the other objects of an
// incarnation (ipc/channel.cpp names them), or a temporary ring <channel>.tmp.<pid>.<incarnation>.
std::optional<ObjectName> parse_object_name(std::string_view rest) {
  // A bridge's object: <channel>.ctl.<incarnation>.bridge-<out|in>.<stream> (ipc/bridge_segment.hpp;
  // a stream name has no dot).
  if (const auto at = rest.rfind(".bridge-"); at != std::string_view::npos) {
    const std::string_view tail = rest.substr(at + 8);
    const auto dot = tail.find('.');
    const std::string_view role = tail.substr(0, dot);
    if (dot != std::string_view::npos && (role == "out" || role == "in") &&
        detail::valid_bridge_stream(tail.substr(dot + 1))) {
      auto name = parse_incarnation_object(rest.substr(0, at));
      if (!name || name->temporary) return std::nullopt;
      name->what = "bridge object";
      return name;
    }
  }
  for (const auto& [suffix, what] : {std::pair<std::string_view, std::string_view>{
                                         ".readers", "readers' registry"},
                                     {".lock", "use lock"}}) {
    if (!rest.ends_with(suffix)) continue;
    auto name = parse_incarnation_object(rest.substr(0, rest.size() - suffix.size()));
    if (!name || name->temporary) return std::nullopt;
    name->what = what;
    return name;
  }
  return parse_incarnation_object(rest);
}

std::optional<ObjectName> parse_incarnation_object(std::string_view rest) {
  if (rest.size() < 22) return std::nullopt;
  const std::string_view hex = rest.substr(rest.size() - 16);
  if (!all_hex(hex) || rest[rest.size() - 17] != '.') return std::nullopt;
  const std::string_view head = rest.substr(0, rest.size() - 17);
  if (head.ends_with(".ctl") && head.size() > 4) {
    return ObjectName{false, std::string(head.substr(0, head.size() - 4)), std::string(hex), 0};
  }
  // <channel>.tmp.<pid>
  const auto dot = head.rfind('.');
  if (dot == std::string_view::npos || dot == 0) return std::nullopt;
  const std::string_view digits = head.substr(dot + 1);
  const std::string_view before = head.substr(0, dot);
  if (digits.empty() || digits.size() > 9 || !before.ends_with(".tmp") || before.size() <= 4 ||
      !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  return ObjectName{true, std::string(before.substr(0, before.size() - 4)), std::string(hex),
                    static_cast<std::uint32_t>(std::stoul(std::string(digits)))};
}

}  // namespace

std::vector<ShmLeftover> list_leftovers() {
  std::vector<ShmLeftover> out;
  const std::filesystem::path dir = std::filesystem::path(detail::shm_path("x")).parent_path();
  struct Found {
    std::string file;
    ObjectName name;
    bool young;
  };
  std::vector<Found> found;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string file = entry.path().filename().string();
    if (!file.starts_with(kRingPrefix)) continue;
    if (auto name = parse_object_name(std::string_view(file).substr(kRingPrefix.size()))) {
      found.push_back({file, std::move(*name), young(entry)});
    }
  }
  // A creation in progress: its temporary ring's creator runs. Its control segment (made first)
  // is not a leftover however long the creator takes.
  auto being_created = [&](const ObjectName& ctl) {
    return std::any_of(found.begin(), found.end(), [&](const Found& f) {
      return f.name.temporary && f.name.channel == ctl.channel &&
             f.name.incarnation == ctl.incarnation &&
             detail::pid_exists(f.name.pid);
    });
  };
  for (const Found& f : found) {
    if (f.young) continue;
    if (f.name.temporary) {
      if (!detail::pid_exists(f.name.pid)) {
        out.push_back(
            {f.file, fmt::format("unfinished creation by pid {}, which died", f.name.pid)});
      }
      continue;
    }
    if (being_created(f.name)) continue;
    auto ring = detail::ShmSegment::open(detail::ring_object_name(f.name.channel), false, false);
    if (!ring) {
      if (ring.error().code == ErrorCode::not_found) {
        out.push_back({f.file, fmt::format("{} of channel '{}', which is gone", f.name.what,
                                           f.name.channel)});
      }
      continue;
    }
    const auto* h = static_cast<const core::RingHeader*>(ring->base());
    if (ring->size() < sizeof(core::RingHeader) || h->magic != core::kRingMagic) continue;
    if (f.name.incarnation != fmt::format("{:016x}", h->incarnation)) {
      out.push_back(
          {f.file, fmt::format("{} of an earlier incarnation of channel '{}'", f.name.what,
                               f.name.channel)});
    }
  }
  std::sort(out.begin(), out.end(),
            [](const ShmLeftover& a, const ShmLeftover& b) { return a.object < b.object; });
  return out;
}

Result<bool> remove_channel_if_abandoned(std::string_view channel, bool dry_run) {
  if (auto ok = detail::check_channel_name(channel); !ok) return tl::unexpected(ok.error());
  const std::string ring_name = detail::ring_object_name(channel);
  auto locked = detail::try_lock_unused_channel(channel);
  if (!locked) return tl::unexpected(locked.error());
  if (locked->fd < 0) return false;  // a process maps it
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{locked->fd};
  auto st = read_channel_stats(channel);
  if (!st) return tl::unexpected(st.error());
  if (!st->abandoned) return false;
  // The name must still name the object we locked (not a channel created since).
  struct stat named {};
  if (::stat(detail::shm_path(ring_name).c_str(), &named) != 0 ||
      named.st_ino != locked->ring_inode) {
    return false;
  }
  if (dry_run) return true;
  if (auto removed = remove_channel(channel); !removed) return tl::unexpected(removed.error());
  return true;
}

Result<void> remove_leftover(std::string_view object) {
  const std::string name(object);
  if (!name.starts_with(kRingPrefix) || name.find('/') != std::string::npos ||
      !parse_object_name(std::string_view(name).substr(kRingPrefix.size()))) {
    return tl::unexpected(Error{ErrorCode::invalid_argument,
                                fmt::format("'{}' is not a shmbus leftover object", name)});
  }
  auto unlinked = detail::ShmSegment::unlink(name);
  if (!unlinked && unlinked.error().code == ErrorCode::not_found) {
    return tl::unexpected(Error{ErrorCode::not_found, fmt::format("'{}' does not exist", name)});
  }
  return unlinked;
}

}  // namespace shmbus
