// read_channel_stats and friends (include/shmbus/stats.hpp): a snapshot of a channel through a
// read-only ChannelView. Every value written by a peer is checked before it is used.
#include <algorithm>
#include <cinttypes>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "ipc/channel.hpp"
#include "ipc/channel_view.hpp"
#include "ipc/journal_link.hpp"
#include "shmbus/stats.hpp"

namespace shmbus {
namespace {

using detail::ControlHeader;
using detail::ProducerSlot;
using detail::SlotState;
using detail::SubscriberSlot;

constexpr std::string_view kRingPrefix = "shmbus.";

bool valid_policy(std::uint8_t p) noexcept {
  return p == static_cast<std::uint8_t>(Policy::block) ||
         p == static_cast<std::uint8_t>(Policy::drop) ||
         p == static_cast<std::uint8_t>(Policy::spill);
}

// The slot's name, if it is NUL-terminated within its field (anything else is garbage).
std::optional<std::string> slot_name(const SubscriberSlot& s) {
  const char* end = static_cast<const char*>(std::memchr(s.name, '\0', sizeof s.name));
  if (end == nullptr) return std::nullopt;
  return std::string(s.name, end);
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
std::optional<SubscriberStats> read_subscriber(const ControlHeader& ctl, std::uint32_t index,
                                               const core::TailWord& head,
                                               std::uint64_t capacity, bool& corrupt) {
  const SubscriberSlot& s = ctl.slots[index];
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
    st.latency = core::take_snapshot(ctl.latency[index]);
  }
  return st;
}

std::optional<ProducerStats> read_producer(const ControlHeader& ctl, std::uint32_t index,
                                           bool& corrupt) {
  const ProducerSlot& p = ctl.producers[index];
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
  st.alive = detail::process_alive(detail::ProcessId{st.pid, st.start_time});
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
  j.durable_sequence = std::min(written, ctl.journal_durable.load(std::memory_order_acquire));
  j.heartbeat_ns = ctl.journal_heartbeat_ns.load(std::memory_order_relaxed);  // relaxed: stat
  return j;
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

  ChannelStats st;
  st.name = view->name();
  st.incarnation = h.incarnation;
  st.capacity = ring.capacity;
  st.max_message = ring.max_message;
  st.single_producer = (h.flags & core::kFlagSingleProducer) != 0;
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
  st.published_messages = ctl.retired_published.load(std::memory_order_relaxed);   // relaxed: stat
  st.published_bytes = ctl.retired_bytes.load(std::memory_order_relaxed);          // relaxed: stat

  bool corrupt = false;
  for (std::uint32_t i = 0; i < detail::kProducerSlots; ++i) {
    corrupt = false;
    if (auto p = read_producer(ctl, i, corrupt)) {
      st.published_messages += p->published;
      st.published_bytes += p->published_bytes;
      st.producers.push_back(*p);
    }
    st.corrupt_slots += corrupt ? 1 : 0;
  }
  for (std::uint32_t i = 0; i < detail::kSubscriberSlots; ++i) {
    corrupt = false;
    if (auto s = read_subscriber(ctl, i, head, ring.capacity, corrupt)) {
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
  st.abandoned = !anyone;
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

std::vector<ShmLeftover> list_leftovers() {
  std::vector<ShmLeftover> out;
  const std::filesystem::path dir = std::filesystem::path(detail::shm_path("x")).parent_path();
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string file = entry.path().filename().string();
    if (!file.starts_with(kRingPrefix)) continue;
    const std::string rest = file.substr(kRingPrefix.size());
    if (const auto ctl = rest.rfind(".ctl."); ctl != std::string::npos) {
      // shmbus.<channel>.ctl.<incarnation>: a leftover when the ring is gone or is another
      // incarnation's.
      const std::string channel = rest.substr(0, ctl);
      const std::string hex = rest.substr(ctl + 5);
      auto ring = detail::ShmSegment::open(detail::ring_object_name(channel), false, false);
      if (!ring) {
        if (ring.error().code == ErrorCode::not_found) {
          out.push_back({file, "control segment of channel '" + channel + "', which is gone"});
        }
        continue;
      }
      const auto* h = static_cast<const core::RingHeader*>(ring->base());
      if (ring->size() < sizeof(core::RingHeader) || h->magic != core::kRingMagic) continue;
      char mine[17];
      std::snprintf(mine, sizeof mine, "%016" PRIx64, h->incarnation);
      if (hex != mine) {
        out.push_back({file, "control segment of an earlier incarnation of channel '" + channel +
                                 "'"});
      }
      continue;
    }
    if (const auto tmp = rest.rfind(".tmp."); tmp != std::string::npos) {
      // shmbus.<channel>.tmp.<pid>.<incarnation>: a creation that never finished, if its
      // creator is gone.
      const std::string tail = rest.substr(tmp + 5);
      const auto dot = tail.find('.');
      std::uint32_t pid = 0;
      try {
        pid = static_cast<std::uint32_t>(std::stoul(tail.substr(0, dot)));
      } catch (const std::exception&) {
        continue;
      }
      if (!detail::process_alive(detail::ProcessId{pid, 0})) {
        out.push_back({file, "unfinished creation by pid " + std::to_string(pid) + ", which died"});
      }
    }
  }
  std::sort(out.begin(), out.end(),
            [](const ShmLeftover& a, const ShmLeftover& b) { return a.object < b.object; });
  return out;
}

Result<void> remove_leftover(std::string_view object) {
  const std::string name(object);
  if (!name.starts_with(kRingPrefix) ||
      (name.find(".ctl.") == std::string::npos && name.find(".tmp.") == std::string::npos) ||
      name.find('/') != std::string::npos) {
    return tl::unexpected(
        Error{ErrorCode::invalid_argument, "'" + name + "' is not a shmbus leftover object"});
  }
  if (!detail::ShmSegment::exists(name)) {
    return tl::unexpected(Error{ErrorCode::not_found, "'" + name + "' does not exist"});
  }
  detail::ShmSegment::remove(name);
  return {};
}

}  // namespace shmbus
