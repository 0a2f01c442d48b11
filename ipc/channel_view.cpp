#include "ipc/channel_view.hpp"

#include <fmt/format.h>

#include "ipc/channel.hpp"

namespace shmbus::detail {

Result<ChannelView> ChannelView::open(std::string_view channel) {
  if (auto ok = check_channel_name(channel); !ok) return tl::unexpected(ok.error());
  ChannelView view;
  view.name_ = std::string(channel);
  const std::string ring_name = ring_object_name(channel);
  view.ring_path_ = shm_path(ring_name);
  auto ring = ShmSegment::open(ring_name, false, false);
  if (!ring) {
    if (ring.error().code == ErrorCode::not_found) {
      ring.error().message = fmt::format("channel '{}' does not exist", view.name_);
    }
    return tl::unexpected(ring.error());
  }
  const std::string where = fmt::format("channel '{}' ({}): ", view.name_, view.ring_path_);
  if (auto ok = validate_ring(*ring, where); !ok) return tl::unexpected(ok.error());
  view.ring_segment_ = std::move(*ring);
  // The view only ever loads through this reference; the mapping is read-only, so a store would
  // fault rather than perturb the channel.
  view.ring_ = core::RingRef::attach(view.ring_segment_.base());
  const std::uint64_t incarnation = view.ring_.header->incarnation;
  const std::string ctl_name = control_object_name(channel, incarnation);
  view.control_path_ = shm_path(ctl_name);
  auto ctl = ShmSegment::open(ctl_name, false, false);
  if (!ctl) {
    ctl.error().message = where + ctl.error().message;
    return tl::unexpected(ctl.error());
  }
  auto layout = validate_control(*ctl, incarnation, where);
  if (!layout) return tl::unexpected(layout.error());
  view.control_segment_ = std::move(*ctl);
  view.control_ = ConstControlRef(view.control_segment_.base(), *layout);
  return view;
}

}  // namespace shmbus::detail
