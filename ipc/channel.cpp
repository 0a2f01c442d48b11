#include "ipc/channel.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <cstring>
#include <iterator>
#include <random>
#include <thread>

namespace shmbus::detail {
namespace {

std::uint64_t random_incarnation() {
  std::random_device rd;
  std::uint64_t v = 0;
  while (v == 0) v = (std::uint64_t{rd()} << 32) ^ rd();
  return v;
}

// Everyone who may read the ring may write the control segment: that is where subscribers
// register and publish their positions.
unsigned control_mode(unsigned ring_mode) {
  unsigned m = ring_mode & 0666;
  if (m & 0400) m |= 0200;
  if (m & 0040) m |= 0020;
  if (m & 0004) m |= 0002;
  return m;
}

Result<ShmSegment> build_control(const std::string& name, std::uint64_t incarnation,
                                 const ControlLayout& layout, unsigned mode) {
  auto seg = ShmSegment::create(name, layout.segment_size, control_mode(mode));
  if (!seg) return seg;
  format_control(seg->base(), layout, incarnation);
  return seg;
}

// ChannelOptions' slot counts, checked like the ring's parameters: only when creating.
std::optional<std::string> check_slot_counts(const ChannelOptions& options) {
  if (options.subscriber_slots < 1 || options.subscriber_slots > kMaxSubscriberSlots) {
    return fmt::format("subscriber_slots {} is out of range (1 to {})", options.subscriber_slots,
                       kMaxSubscriberSlots);
  }
  if (options.producer_slots < 1 || options.producer_slots > kMaxProducerSlots) {
    return fmt::format("producer_slots {} is out of range (1 to {})", options.producer_slots,
                       kMaxProducerSlots);
  }
  return std::nullopt;
}

ChannelInfo describe(std::string_view channel, const core::RingRef& ring,
                     const ControlLayout& control) {
  return ChannelInfo{std::string(channel),
                     ring.capacity,
                     ring.max_message,
                     ring.header->incarnation,
                     (ring.header->flags & core::kFlagSingleProducer) != 0,
                     control.subscriber_slots,
                     control.producer_slots};
}

}  // namespace

static_assert(ChannelOptions{}.subscriber_slots == kDefaultSubscriberSlots);
static_assert(ChannelOptions{}.producer_slots == kDefaultProducerSlots);

Result<void> validate_ring(const ShmSegment& ring, const std::string& where) {
  if (auto err = core::check_ring(ring.base(), ring.size())) {
    const bool version = err->find("version") != std::string::npos ||
                         err->find("fingerprint") != std::string::npos;
    return tl::unexpected(
        Error{version ? ErrorCode::version_mismatch : ErrorCode::corrupt,
              fmt::format("{}{}", where, *err)});
  }
  return {};
}

Result<ControlLayout> validate_control(const ShmSegment& control, std::uint64_t incarnation,
                                       const std::string& where) {
  auto layout = check_control(control.base(), control.size(), incarnation);
  if (!layout) {
    const std::string& err = layout.error();
    return tl::unexpected(Error{err.find("version") != std::string::npos
                                    ? ErrorCode::version_mismatch
                                    : ErrorCode::corrupt,
                                fmt::format("{}{} ({})", where, err, shm_path(control.name()))});
  }
  return *layout;
}

std::string ring_object_name(std::string_view channel) {
  return fmt::format("shmbus.{}", channel);
}

std::string control_object_name(std::string_view channel, std::uint64_t incarnation) {
  return fmt::format("shmbus.{}.ctl.{:016x}", channel, incarnation);
}

Result<void> check_channel_name(std::string_view channel) {
  const bool ok_length = !channel.empty() && channel.size() <= 48;
  bool ok_chars = ok_length && channel.front() != '.' && channel.front() != '-';
  for (char ch : channel) {
    const bool allowed = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                         (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-';
    ok_chars = ok_chars && allowed;
  }
  if (channel.find(".ctl.") != std::string_view::npos || channel.find(".tmp.") != std::string_view::npos) {
    ok_chars = false;
  }
  if (!ok_chars) {
    return tl::unexpected(
        Error{ErrorCode::invalid_argument,
              fmt::format("bad channel name '{}': use 1-48 of [A-Za-z0-9._-], not starting with "
                          "'.' or '-'",
                          channel)});
  }
  return {};
}

Result<std::shared_ptr<ChannelMapping>> ChannelMapping::open_or_create(
    std::string_view channel, const ChannelOptions& options) {
  if (auto ok = check_channel_name(channel); !ok) return tl::unexpected(ok.error());
  const std::string ring_name = ring_object_name(channel);
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (ShmSegment::exists(ring_name)) {
      // It exists, so it is complete (creation links a finished ring): one try, no waiting. A gc
      // may remove it between the check and the open; then we create it.
      auto existing = open(channel, true, std::chrono::milliseconds(0));
      if (existing || existing.error().code != ErrorCode::not_found) return existing;
      continue;
    }

    const ProcessId self = self_process();
    core::RingParams params;
    params.capacity = options.capacity;
    params.max_message = options.max_message;
    params.incarnation = random_incarnation();
    params.created_ns = realtime_ns();
    params.creator_pid = self.pid;
    params.creator_start_time = self.start_time;
    const std::string name(channel);
    params.name = name.c_str();
    params.single_producer = options.single_producer;
    auto err = core::check_params(params);
    if (!err) err = check_slot_counts(options);
    if (err) {
      return tl::unexpected(
          Error{ErrorCode::invalid_argument, fmt::format("channel '{}': {}", name, *err)});
    }

    const std::string ctl_name = control_object_name(channel, params.incarnation);
    const ControlLayout layout = control_layout(options.subscriber_slots, options.producer_slots);
    auto ctl = build_control(ctl_name, params.incarnation, layout, options.mode);
    if (!ctl) return tl::unexpected(ctl.error());

    // Built under a private name and linked to ring_name only once formatted, so that an opener
    // never sees a half-built ring.
    const std::string staging_name =
        fmt::format("{}.tmp.{}.{:016x}", ring_name, self.pid, params.incarnation);
    auto ring = ShmSegment::create(staging_name, core::ring_segment_size(options.capacity),
                                   options.mode, Use::use);
    if (!ring) {
      ShmSegment::remove(ctl_name);
      return tl::unexpected(ring.error());
    }
    core::format_ring(ring->base(), params);
    auto linked = ShmSegment::link(staging_name, ring_name);
    ShmSegment::remove(staging_name);
    if (!linked) {
      ShmSegment::remove(ctl_name);
      return tl::unexpected(linked.error());
    }
    if (!*linked) {  // somebody else created it first: use theirs
      ShmSegment::remove(ctl_name);
      continue;
    }
    auto mapping = std::make_shared<ChannelMapping>();
    mapping->ring_segment_ = std::move(*ring);
    mapping->control_segment_ = std::move(*ctl);
    mapping->ring_ = core::RingRef::attach(mapping->ring_segment_.base());
    mapping->control_ = ControlRef(mapping->control_segment_.base(), layout);
    mapping->info_ = describe(channel, mapping->ring_, layout);
    mapping->ring_writable_ = true;
    return mapping;
  }
  return open(channel, true, options.open_timeout);
}

Result<std::shared_ptr<ChannelMapping>> ChannelMapping::open(std::string_view channel,
                                                             bool writable_ring,
                                                             std::chrono::milliseconds timeout,
                                                             bool prefault_ring) {
  if (auto ok = check_channel_name(channel); !ok) return tl::unexpected(ok.error());
  const std::string ring_name = ring_object_name(channel);
  const std::int64_t deadline = monotonic_ns() + timeout.count() * 1'000'000;
  for (;;) {
    auto ring = ShmSegment::open(ring_name, writable_ring, prefault_ring, Use::use);
    if (ring) {
      auto m = attach(channel, std::move(*ring));
      if (m) (*m)->ring_writable_ = writable_ring;
      return m;
    }
    if (ring.error().code != ErrorCode::not_found || monotonic_ns() >= deadline) {
      if (ring.error().code == ErrorCode::not_found) {
        ring.error().message =
            fmt::format("channel '{}' does not exist ({})", channel, ring.error().message);
      }
      return tl::unexpected(ring.error());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

Result<std::shared_ptr<ChannelMapping>> ChannelMapping::attach(std::string_view channel,
                                                               ShmSegment ring_segment) {
  const std::string where =
      fmt::format("channel '{}' ({}): ", channel, shm_path(ring_segment.name()));
  if (auto ok = validate_ring(ring_segment, where); !ok) return tl::unexpected(ok.error());
  auto mapping = std::make_shared<ChannelMapping>();
  mapping->ring_ = core::RingRef::attach(ring_segment.base());
  const std::uint64_t incarnation = mapping->ring_.header->incarnation;
  const std::string ctl_name = control_object_name(channel, incarnation);
  auto ctl = ShmSegment::open(ctl_name, true);
  if (!ctl) {
    ctl.error().message = fmt::format("{}{}", where, ctl.error().message);
    return tl::unexpected(ctl.error());
  }
  auto layout = validate_control(*ctl, incarnation, where);
  if (!layout) return tl::unexpected(layout.error());
  mapping->ring_segment_ = std::move(ring_segment);
  mapping->control_segment_ = std::move(*ctl);
  mapping->control_ = ControlRef(mapping->control_segment_.base(), *layout);
  mapping->info_ = describe(channel, mapping->ring_, *layout);
  return mapping;
}

}  // namespace shmbus::detail

namespace shmbus {

Result<RemovalReport> unlink_channel(std::string_view channel) {
  if (auto ok = detail::check_channel_name(channel); !ok) return tl::unexpected(ok.error());
  const std::string ring_name = detail::ring_object_name(channel);
  RemovalReport report;
  auto unlink = [&report](const std::string& object) {
    auto unlinked = detail::ShmSegment::unlink(object);
    // Gone already (another rm or gc got there first) is as good as removed.
    const bool gone = unlinked || unlinked.error().code == ErrorCode::not_found;
    report.objects.push_back(
        {object, gone ? std::nullopt : std::optional<Error>(std::move(unlinked.error()))});
  };
  // Find the control segment through the ring's incarnation before the ring goes.
  if (auto ring = detail::ShmSegment::open(ring_name, false); ring) {
    // Even a ring this build cannot use (another layout version) names its control segment by
    // the incarnation at a fixed offset after the magic.
    const auto* h = static_cast<const core::RingHeader*>(ring->base());
    if (ring->size() >= sizeof(core::RingHeader) && h->magic == core::kRingMagic) {
      unlink(detail::control_object_name(channel, h->incarnation));
    }
  } else if (ring.error().code == ErrorCode::not_found) {
    return tl::unexpected(
        Error{ErrorCode::not_found, fmt::format("channel '{}' does not exist", channel)});
  }
  unlink(ring_name);
  return report;
}

Result<void> remove_channel(std::string_view channel) {
  auto report = unlink_channel(channel);
  if (!report) return tl::unexpected(report.error());
  if (report->complete()) return {};
  std::optional<ErrorCode> code;
  std::string outcomes;
  for (const RemovedObject& o : report->objects) {
    if (o.error && !code) code = o.error->code;
    fmt::format_to(std::back_inserter(outcomes), "{}{}", outcomes.empty() ? ": " : "; ",
                   o.error ? o.error->message
                           : fmt::format("removed {}", detail::shm_path(o.object)));
  }
  return tl::unexpected(
      Error{*code, fmt::format("channel '{}' was not removed{}", channel, outcomes)});
}

}  // namespace shmbus
