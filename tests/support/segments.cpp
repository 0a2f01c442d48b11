#include "tests/support/segments.hpp"

#include <algorithm>
#include <cstring>

#include "ipc/channel.hpp"

namespace shmbus::test {

std::string ring_path(std::string_view channel) {
  return "/dev/shm/" + detail::ring_object_name(channel);
}

std::optional<ChannelFiles> ChannelFiles::open(std::string_view channel, bool writable) {
  ChannelFiles f;
  auto ring = FileMapping::open(ring_path(channel), writable);
  if (!ring || ring->size() < core::kRingDataOffset) return std::nullopt;
  f.ring_ = std::move(*ring);
  f.control_path_ = "/dev/shm/" + detail::control_object_name(channel, f.ring().incarnation);
  auto control = FileMapping::open(f.control_path_, writable);
  if (!control || control->size() < sizeof(detail::ControlHeader)) return std::nullopt;
  f.control_ = std::move(*control);
  return f;
}

namespace {

// `count` elements of T at `offset` of the mapping, fewer if the file ends first.
template <typename T>
std::span<T> array_in(const FileMapping& file, std::uint64_t offset, std::uint64_t count) {
  if (offset > file.size()) return {};
  count = std::min<std::uint64_t>(count, (file.size() - offset) / sizeof(T));
  return {reinterpret_cast<T*>(file.data() + offset), static_cast<std::size_t>(count)};
}

}  // namespace

std::span<detail::SubscriberSlot> ChannelFiles::subscriber_slots() const {
  return array_in<detail::SubscriberSlot>(control_, control().subscriber_slots_offset,
                                          control().slot_count);
}

std::span<detail::ProducerSlot> ChannelFiles::producer_slots() const {
  return array_in<detail::ProducerSlot>(control_, control().producer_slots_offset,
                                        control().producer_slot_count);
}

std::optional<std::uint32_t> ChannelFiles::find_named_slot(std::string_view name) const {
  const std::span<detail::SubscriberSlot> slots = subscriber_slots();
  for (std::uint32_t i = 0; i < slots.size(); ++i) {
    const detail::SubscriberSlot& s = slots[i];
    if (detail::owner_state(s.owner.load()) == detail::SlotState::free) continue;
    if (std::strncmp(s.name, std::string(name).c_str(), sizeof s.name) == 0) return i;
  }
  return std::nullopt;
}

std::array<int, 5> ChannelFiles::slot_states() const {
  std::array<int, 5> n{};
  for (const detail::SubscriberSlot& s : subscriber_slots()) {
    const auto st = static_cast<std::size_t>(detail::owner_state(s.owner.load()));
    if (st < n.size()) ++n[st];
  }
  return n;
}

}  // namespace shmbus::test
