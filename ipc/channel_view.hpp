// A channel mapped read-only, for tools: validated like any opener validates, but nothing is ever
// written, no slot is taken, and read permission on the two segments is all it needs.
#pragma once

#include <string>
#include <string_view>

#include "core/ring.hpp"
#include "ipc/control_layout.hpp"
#include "ipc/control_segment.hpp"
#include "ipc/shm_segment.hpp"
#include "shmbus/shmbus.hpp"

namespace shmbus::detail {

class ChannelView {
 public:
  // Errors: not_found, permission_denied, version_mismatch, corrupt (the message names the
  // segment's path and what is wrong).
  static Result<ChannelView> open(std::string_view channel);

  const core::RingRef& ring() const noexcept { return ring_; }
  // The control segment's fixed header, and the segment with its arrays as validated.
  const ControlHeader& control() const noexcept { return control_.header(); }
  const ConstControlRef& control_ref() const noexcept { return control_; }
  const std::string& name() const noexcept { return name_; }
  const std::string& ring_path() const noexcept { return ring_path_; }
  const std::string& control_path() const noexcept { return control_path_; }
  std::size_t ring_segment_size() const noexcept { return ring_segment_.size(); }
  std::size_t control_segment_size() const noexcept { return control_segment_.size(); }

 private:
  ShmSegment ring_segment_;
  ShmSegment control_segment_;
  core::RingRef ring_;
  ConstControlRef control_;
  std::string name_;
  std::string ring_path_;
  std::string control_path_;
};

}  // namespace shmbus::detail
