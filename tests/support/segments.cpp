#include "tests/support/segments.hpp"

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

std::optional<std::uint32_t> ChannelFiles::find_named_slot(std::string_view name) const {
  for (std::uint32_t i = 0; i < detail::kSubscriberSlots; ++i) {
    const detail::SubscriberSlot& s = control().slots[i];
    if (detail::owner_state(s.owner.load()) == detail::SlotState::free) continue;
    if (std::strncmp(s.name, std::string(name).c_str(), sizeof s.name) == 0) return i;
  }
  return std::nullopt;
}

std::array<int, 5> ChannelFiles::slot_states() const {
  std::array<int, 5> n{};
  for (const detail::SubscriberSlot& s : control().slots) {
    const auto st = static_cast<std::size_t>(detail::owner_state(s.owner.load()));
    if (st < n.size()) ++n[st];
  }
  return n;
}

}  // namespace shmbus::test
