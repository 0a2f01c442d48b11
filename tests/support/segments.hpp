// A channel's shared-memory objects seen from outside the library, the way a tool sees them:
// plain mmap of /dev/shm/shmbus.<name> and of its control segment, for tests that check what the
// library wrote (slot states, eviction counters) or that damage a segment on purpose.
#pragma once

#include <array>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "core/layout.hpp"
#include "ipc/control_layout.hpp"
#include "tests/support/process.hpp"

namespace shmbus::test {

std::string ring_path(std::string_view channel);

class ChannelFiles {
 public:
  // Maps the ring (only its header is needed) and the control segment of its incarnation.
  static std::optional<ChannelFiles> open(std::string_view channel, bool writable = false);

  core::RingHeader& ring() const { return *reinterpret_cast<core::RingHeader*>(ring_.data()); }
  detail::ControlHeader& control() const {
    return *reinterpret_cast<detail::ControlHeader*>(control_.data());
  }
  // The arrays where the header puts them, as far as they lie inside the file (a test that
  // damaged the header gets fewer slots, never a pointer past the mapping).
  std::span<detail::SubscriberSlot> subscriber_slots() const;
  std::span<detail::ProducerSlot> producer_slots() const;
  const std::string& control_path() const { return control_path_; }

  // The slots whose name is `name` (any state but free).
  std::optional<std::uint32_t> find_named_slot(std::string_view name) const;
  // How many slots are in each state, indexed by detail::SlotState.
  std::array<int, 5> slot_states() const;

 private:
  FileMapping ring_;
  FileMapping control_;
  std::string control_path_;
};

}  // namespace shmbus::test
