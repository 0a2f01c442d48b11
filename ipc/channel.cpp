#include "ipc/channel.hpp"


#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <iterator>
#include <random>
#include <thread>

#include "ipc/bridge_segment.hpp"
#include "ipc/group_segment.hpp"

namespace shmbus::detail {
namespace {

std::uint64_t random_incarnation() {
  std::random_device rd;
  std::uint64_t v = 0;
  while (v == 0) v = (std::uint64_t{rd()} << 32) ^ rd();
  return v;
}

// A segment in the control format (the control segment or the readers' registry), formatted,
// given to the gating group if one is named.
Result<ShmSegment> build_control(const std::string& name, std::uint64_t incarnation,
                                 const ControlLayout& layout, unsigned mode,
                                 std::optional<std::uint32_t> group, ControlRole role) {
  // With a gating group the segment is created private and given its group and mode only then:
  // created with the final mode, the creator's own group (the ring's untrusted readers) could
  // open it for writing in between and keep that descriptor.
  auto segment = ShmSegment::create(name, layout.segment_size, group ? (mode & 0700) : mode);
  if (!segment) return segment;
  if (group) {
    if (auto given = give_to_group(name, *group, mode); !given) {
      ShmSegment::remove(name);
      return tl::unexpected(given.error());
    }
  }
  format_control(segment->base(), layout, incarnation, role);
  return segment;
}

// The readers' registry holds subscriber slots only; producers never look at it.
ControlLayout readers_layout(std::uint32_t subscriber_slots) {
  return control_layout(subscriber_slots, 1);
}

std::string describe_configuration(std::uint64_t capacity, std::uint32_t max_message,
                                   bool single_producer, std::uint32_t subscriber_slots,
                                   std::uint32_t producer_slots) {
  return fmt::format("capacity {}, max message {}, {}, {} subscriber slots, {} producer slots",
                     capacity, max_message, single_producer ? "single producer" : "multi-producer",
                     subscriber_slots, producer_slots);
}

// An existing channel opened by a would-be creator: its configuration must be the one asked for,
// unless the caller accepts whatever exists.
Result<void> check_configuration(const ChannelInfo& info, const ChannelOptions& options) {
  if (options.accept_existing) return {};
  if (info.capacity == options.capacity && info.max_message == options.max_message &&
      info.single_producer == options.single_producer &&
      info.subscriber_slots == options.subscriber_slots &&
      info.producer_slots == options.producer_slots) {
    return {};
  }
  return tl::unexpected(Error{
      ErrorCode::invalid_argument,
      fmt::format("channel '{}' exists with {}; this opener asked for {} (accept the existing "
                  "configuration with ChannelOptions::accept_existing or --accept-existing)",
                  info.name,
                  describe_configuration(info.capacity, info.max_message, info.single_producer,
                                         info.subscriber_slots, info.producer_slots),
                  describe_configuration(options.capacity, options.max_message,
                                         options.single_producer, options.subscriber_slots,
                                         options.producer_slots))});
}

// Every object of incarnation `incarnation` but the ring.
void remove_incarnation_objects(std::string_view channel, std::uint64_t incarnation) {
  for (const std::string& group : list_group_names(channel, incarnation)) {
    ShmSegment::remove(group_object_name(channel, incarnation, group));
  }
  for (const std::string& bridge : list_bridge_names(channel, incarnation)) {
    ShmSegment::remove(bridge_object_prefix(channel, incarnation) + bridge);
  }
  ShmSegment::remove(control_object_name(channel, incarnation));
  ShmSegment::remove(readers_object_name(channel, incarnation));
  ShmSegment::remove(lock_object_name(channel, incarnation));
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

// Under the control segment's name, which no channel's ring can have (check_channel_name).
std::string readers_object_name(std::string_view channel, std::uint64_t incarnation) {
  return fmt::format("{}.readers", control_object_name(channel, incarnation));
}

std::string lock_object_name(std::string_view channel, std::uint64_t incarnation) {
  return fmt::format("{}.lock", control_object_name(channel, incarnation));
}

Result<void> check_channel_name(std::string_view channel) {
  // 48 bytes, and 4 more for a name ending in ".dlq", so that every channel's dead-letter channel
  // (dead_letter_channel(), include/shmbus/dead_letter.hpp) is a valid name too. Both fit the ring
  // header's 64-byte name field.
  constexpr std::size_t kMaxName = 48;
  constexpr std::string_view kDeadLetterSuffix = ".dlq";
  static_assert(kMaxName + kDeadLetterSuffix.size() < sizeof(core::RingHeader::name));
  const std::size_t max_size =
      channel.ends_with(kDeadLetterSuffix) ? kMaxName + kDeadLetterSuffix.size() : kMaxName;
  const bool ok_length = !channel.empty() && channel.size() <= max_size;
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
              fmt::format("bad channel name '{}': use 1-48 of [A-Za-z0-9._-] (and a '.dlq' "
                          "suffix beyond them), not starting with '.' or '-'",
                          channel)});
  }
  return {};
}

Result<std::shared_ptr<ChannelMapping>> ChannelMapping::open_or_create(
    std::string_view channel, const ChannelOptions& options) {
  if (auto ok = check_channel_name(channel); !ok) return tl::unexpected(ok.error());
  const std::string ring_name = ring_object_name(channel);
  const OpenRequest existing_request{RingAccess::write, ControlAccess::write,
                                     std::chrono::milliseconds(0), true};
  auto open_existing = [&](const OpenRequest& request) -> Result<std::shared_ptr<ChannelMapping>> {
    auto existing = open(channel, request);
    if (!existing) return existing;
    if (auto same = check_configuration((*existing)->info(), options); !same) {
      return tl::unexpected(same.error());
    }
    return existing;
  };
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (ShmSegment::exists(ring_name)) {
      // It exists, so it is complete (creation links a finished ring): one try, no waiting. A gc
      // may remove it between the check and the open; then we create it.
      auto existing = open_existing(existing_request);
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

    // The use lock first, held from the start: every other object of the incarnation exists
    // before the ring's name points at it, so an opener that sees the ring finds them all.
    const ChannelModes modes = channel_modes(options.mode, options.gating_group.has_value());
    auto lock = UseLock::create(lock_object_name(channel, params.incarnation), modes.lock,
                                options.gating_group);
    if (!lock) return tl::unexpected(lock.error());
    const ControlLayout layout = control_layout(options.subscriber_slots, options.producer_slots);
    auto ctl = build_control(control_object_name(channel, params.incarnation), params.incarnation,
                             layout, modes.control, options.gating_group, ControlRole::control);
    if (!ctl) {
      remove_incarnation_objects(channel, params.incarnation);
      return tl::unexpected(ctl.error());
    }
    // The registry keeps the creator's group: the ring's readers, whom it serves.
    auto readers = build_control(readers_object_name(channel, params.incarnation),
                                 params.incarnation, readers_layout(options.subscriber_slots),
                                 modes.readers, std::nullopt, ControlRole::readers);
    if (!readers) {
      remove_incarnation_objects(channel, params.incarnation);
      return tl::unexpected(readers.error());
    }

    // Built under a private name and linked to ring_name only once formatted, so that an opener
    // never sees a half-built ring.
    const std::string staging_name =
        fmt::format("{}.tmp.{}.{:016x}", ring_name, self.pid, params.incarnation);
    auto ring = ShmSegment::create(staging_name, core::ring_segment_size(options.capacity),
                                   modes.ring);
    if (!ring) {
      remove_incarnation_objects(channel, params.incarnation);
      return tl::unexpected(ring.error());
    }
    core::format_ring(ring->base(), params);
    auto linked = ShmSegment::link(staging_name, ring_name);
    ShmSegment::remove(staging_name);
    if (!linked || !*linked) remove_incarnation_objects(channel, params.incarnation);
    if (!linked) return tl::unexpected(linked.error());
    if (!*linked) {
      // Somebody else created it first: theirs, if it is what we asked for. It is complete
      // (linked), so no waiting.
      return open_existing(existing_request);
    }
    auto mapping = std::make_shared<ChannelMapping>();
    mapping->ring_segment_ = std::move(*ring);
    mapping->control_segment_ = std::move(*ctl);
    mapping->use_lock_ = std::move(*lock);
    mapping->ring_ = core::RingRef::attach(mapping->ring_segment_.base());
    mapping->control_ = ControlRef(mapping->control_segment_.base(), layout);
    mapping->channel_control_ = ConstControlRef(mapping->control_segment_.base(), layout);
    mapping->info_ = describe(channel, mapping->ring_, layout);
    mapping->ring_writable_ = true;
    mapping->trusted_ = true;
    return mapping;
  }
  OpenRequest last = existing_request;
  last.timeout = options.open_timeout;
  return open_existing(last);
}

Result<std::shared_ptr<ChannelMapping>> ChannelMapping::open(std::string_view channel,
                                                             bool writable_ring,
                                                             std::chrono::milliseconds timeout,
                                                             bool prefault_ring) {
  return open(channel, OpenRequest{writable_ring ? RingAccess::write : RingAccess::read,
                                   ControlAccess::write, timeout, prefault_ring});
}

Result<std::shared_ptr<ChannelMapping>> ChannelMapping::open(std::string_view channel,
                                                             const OpenRequest& request) {
  if (auto ok = check_channel_name(channel); !ok) return tl::unexpected(ok.error());
  const std::string ring_name = ring_object_name(channel);
  const std::int64_t deadline = monotonic_ns() + request.timeout.count() * 1'000'000;
  for (;;) {
    bool writable = request.ring != RingAccess::read;
    auto ring = ShmSegment::open(ring_name, writable, request.prefault_ring);
    if (!ring && request.ring == RingAccess::write_if_permitted &&
        ring.error().code == ErrorCode::permission_denied) {
      writable = false;
      ring = ShmSegment::open(ring_name, false, request.prefault_ring);
    }
    Result<std::shared_ptr<ChannelMapping>> mapping = tl::unexpected(Error{});
    if (ring) {
      mapping = attach(channel, std::move(*ring), request);
      if (mapping) {
        (*mapping)->ring_writable_ = writable;
        return mapping;
      }
    } else {
      mapping = tl::unexpected(ring.error());
    }
    // not_found: not created yet, or removed while we opened it (a gc): wait for a creator.
    if (mapping.error().code != ErrorCode::not_found || monotonic_ns() >= deadline) {
      if (!ring && mapping.error().code == ErrorCode::not_found) {
        mapping.error().message =
            fmt::format("channel '{}' does not exist ({})", channel, mapping.error().message);
      }
      return mapping;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

Result<void> ChannelMapping::map_control(std::string_view channel, const OpenRequest& request,
                                         const std::string& where) {
  const std::uint64_t incarnation = ring_.header->incarnation;
  auto prefix = [&](Error error) {
    error.message = fmt::format("{}{}", where, error.message);
    return tl::unexpected(std::move(error));
  };
  const std::string ctl_name = control_object_name(channel, incarnation);
  auto ctl = ShmSegment::open(ctl_name, true);
  trusted_ = ctl.has_value();
  if (!ctl && ctl.error().code == ErrorCode::permission_denied &&
      request.control == ControlAccess::write_or_register_as_reader) {
    ctl = ShmSegment::open(ctl_name, false);
  } else if (!ctl && ctl.error().code == ErrorCode::permission_denied) {
    ctl.error().message += " (publishing, gating with the block policy and journaling need write "
                           "access to the control segment: the ring's write permission or the "
                           "channel's gating group, see docs/security.md)";
  }
  if (!ctl) return prefix(ctl.error());
  auto layout = validate_control(*ctl, incarnation, where);
  if (!layout) return tl::unexpected(layout.error());
  control_segment_ = std::move(*ctl);
  channel_control_ = ConstControlRef(control_segment_.base(), *layout);
  info_ = describe(channel, ring_, *layout);
  if (trusted_) {
    auto lock = UseLock::hold(lock_object_name(channel, incarnation));
    if (!lock) return prefix(lock.error());
    use_lock_ = std::move(*lock);
    control_ = ControlRef(control_segment_.base(), *layout);
    return {};
  }
  // An untrusted reader: its registration goes to the registry, where nobody gates on it.
  auto readers = ShmSegment::open(readers_object_name(channel, incarnation), true);
  if (!readers) return prefix(readers.error());
  auto readers_checked =
      check_control(readers->base(), readers->size(), incarnation, ControlRole::readers);
  if (!readers_checked || readers_checked->subscriber_slots != layout->subscriber_slots) {
    return tl::unexpected(Error{
        ErrorCode::corrupt,
        fmt::format("{}readers' registry {}: {}", where, shm_path(readers->name()),
                    readers_checked ? "its slot count differs from the control segment's"
                                    : readers_checked.error())});
  }
  readers_segment_ = std::move(*readers);
  control_ = ControlRef(readers_segment_.base(), *readers_checked);
  return {};
}

Result<std::shared_ptr<ChannelMapping>> ChannelMapping::attach(std::string_view channel,
                                                               ShmSegment ring_segment,
                                                               const OpenRequest& request) {
  const std::string where =
      fmt::format("channel '{}' ({}): ", channel, shm_path(ring_segment.name()));
  if (auto ok = validate_ring(ring_segment, where); !ok) return tl::unexpected(ok.error());
  auto mapping = std::make_shared<ChannelMapping>();
  mapping->ring_segment_ = std::move(ring_segment);
  mapping->ring_ = core::RingRef::attach(mapping->ring_segment_.base());
  if (auto mapped = mapping->map_control(channel, request, where); !mapped) {
    return tl::unexpected(mapped.error());
  }
  return mapping;
}

Result<UnusedChannelLock> try_lock_unused_channel(std::string_view channel) {
  const std::string ring_name = ring_object_name(channel);
  auto ring = ShmSegment::open(ring_name, false, false);
  if (!ring) return tl::unexpected(ring.error());
  const auto* h = static_cast<const core::RingHeader*>(ring->base());
  if (ring->size() < sizeof(core::RingHeader) || h->magic != core::kRingMagic) {
    return tl::unexpected(Error{ErrorCode::corrupt,
                                fmt::format("'{}' is not a shmbus ring", shm_path(ring_name))});
  }
  struct stat st {};
  if (::stat(shm_path(ring_name).c_str(), &st) != 0) {
    return tl::unexpected(Error{ErrorCode::not_found,
                                fmt::format("channel '{}' does not exist", channel)});
  }
  auto fd = try_lock_exclusive(lock_object_name(channel, h->incarnation));
  if (!fd) return tl::unexpected(fd.error());
  return UnusedChannelLock{*fd, st.st_ino};
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
      // The lock goes last: while it exists, an opener of this incarnation still finds it.
      // The consumer groups and the bridges first: they are named under the control segment.
      for (const std::string& group : detail::list_group_names(channel, h->incarnation)) {
        unlink(detail::group_object_name(channel, h->incarnation, group));
      }
      for (const std::string& bridge : detail::list_bridge_names(channel, h->incarnation)) {
        unlink(detail::bridge_object_prefix(channel, h->incarnation) + bridge);
      }
      unlink(detail::control_object_name(channel, h->incarnation));
      unlink(detail::readers_object_name(channel, h->incarnation));
      unlink(detail::lock_object_name(channel, h->incarnation));
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
