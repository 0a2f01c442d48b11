// Joining and leaving a group, and the public calls of GroupConsumer.
#include <fmt/format.h>
#include <sys/stat.h>

#include <thread>

#include "ipc/group_state.hpp"
#include "ipc/group_words.hpp"
#include "ipc/futex.hpp"
#include "ipc/subscriber_state.hpp"

namespace shmbus {

const char* to_string(AckStatus status) noexcept {
  switch (status) {
    case AckStatus::ok: return "ok";
    case AckStatus::fenced: return "fenced";
    case AckStatus::not_held: return "not_held";
  }
  return "unknown";
}

namespace detail {

// The Subscriber's internals the group needs: the gate's mapping and slot.
struct GroupAccess {
  static SubscriberSlowState& slow(Subscriber& s) { return *s.state_; }
};

namespace {

std::string describe(const GroupSettings& s) {
  return fmt::format("policy {}, ack timeout {} ms, max attempts {}, window {}, dead letters to "
                     "'{}'{}",
                     to_string(s.policy), s.ack_timeout_ns / 1'000'000, s.max_attempts, s.window,
                     s.dead_letter_channel, s.keyed ? ", keyed" : "");
}

Result<void> check_same(const GroupSettings& have, const GroupOptions& want,
                        const std::string& dead_letters, const std::string& where) {
  GroupSettings asked;
  asked.policy = want.policy;
  asked.keyed = want.keyed;
  asked.ack_timeout_ns = want.ack_timeout.count();
  asked.max_attempts = want.max_attempts;
  asked.window = want.window;
  asked.dead_letter_channel = dead_letters;
  if (want.accept_existing ||
      (have.policy == asked.policy && have.keyed == asked.keyed &&
       have.ack_timeout_ns == asked.ack_timeout_ns && have.max_attempts == asked.max_attempts &&
       have.window == asked.window && have.dead_letter_channel == asked.dead_letter_channel)) {
    return {};
  }
  return tl::unexpected(Error{ErrorCode::invalid_argument,
                              fmt::format("{}: the group exists with {}; asked for {} (set "
                                          "accept_existing to join it as it is)",
                                          where, describe(have), describe(asked))});
}

// Where a new group's cursors start.
GroupStart start_point(const core::RingRef& ring, const GroupOptions& o) {
  switch (o.start) {
    case StartFrom::latest: {
      const core::TailWord tail = ring.load_tail();
      return {tail.position, tail.next_sequence};
    }
    case StartFrom::earliest: {
      const core::TailWord e = core::earliest_retained(ring, ring.capacity / 8);
      return {e.position, e.next_sequence};
    }
    case StartFrom::sequence: {
      const core::TailWord b = core::boundary_for_sequence(ring, o.start_sequence, ring.capacity / 8);
      return {b.position, b.next_sequence};
    }
  }
  return {};
}

// The mode and group of the channel's control segment: a group object is trusted like it.
Result<std::pair<unsigned, std::uint32_t>> control_mode(const std::string& name) {
  struct stat st {};
  if (::stat(shm_path(name).c_str(), &st) != 0) {
    return tl::unexpected(shm_error("cannot stat", name, errno));
  }
  return std::pair<unsigned, std::uint32_t>{st.st_mode & 0777, st.st_gid};
}

}  // namespace
}  // namespace detail

Result<GroupConsumer> GroupConsumer::open(std::string_view channel, std::string_view group,
                                          const GroupOptions& options) {
  using namespace detail;
  if (auto ok = check_group_name(group); !ok) return tl::unexpected(ok.error());
  if (auto ok = check_group_options(options); !ok) return tl::unexpected(ok.error());
  const std::string where = fmt::format("group '{}' of channel '{}'", group, channel);
  // A first look at the channel, for its incarnation and ring (the group object is named after
  // the incarnation, and a new group starts where the ring stands).
  auto look = ChannelMapping::open(channel, false, options.open_timeout, false);
  if (!look) return tl::unexpected(look.error());
  const std::uint64_t incarnation = (*look)->info().incarnation;
  const std::string dead_letters = options.dead_letter_channel.empty()
                                       ? std::string(channel) + ".dlq"
                                       : options.dead_letter_channel;
  if (dead_letters.size() >= kGroupChannelNameSize) {
    return tl::unexpected(Error{ErrorCode::invalid_argument,
                                fmt::format("{}: dead-letter channel name '{}' is too long", where,
                                            dead_letters)});
  }
  auto mode = control_mode(control_object_name(channel, incarnation));
  if (!mode) return tl::unexpected(mode.error());
  const std::string object = group_object_name(channel, incarnation, group);
  auto segment = open_or_create_group(object, incarnation, group, options, dead_letters,
                                      start_point((*look)->ring(), options), mode->first,
                                      mode->second);
  if (!segment) return tl::unexpected(segment.error());
  auto settings = validate_group(*segment, incarnation, where);
  if (!settings) return tl::unexpected(settings.error());
  if (auto same = check_same(*settings, options, dead_letters, where); !same) {
    return tl::unexpected(same.error());
  }
  look->reset();

  GroupConsumer consumer;
  consumer.state_ = std::make_unique<GroupState>();
  GroupState& s = *consumer.state_;
  s.channel_name = std::string(channel);
  s.group_name = std::string(group);
  s.settings = options;
  s.settings.policy = settings->policy;
  s.settings.keyed = settings->keyed;
  s.settings.ack_timeout = std::chrono::nanoseconds(settings->ack_timeout_ns);
  s.settings.max_attempts = settings->max_attempts;
  s.settings.window = settings->window;
  s.settings.dead_letter_channel = settings->dead_letter_channel;
  s.self = self_process();
  s.segment = std::move(*segment);
  s.header = &group_header(s.segment.base());
  s.members = group_members(s.segment.base());
  s.entries = group_entries(s.segment.base());
  s.window_mask = settings->window - 1;
  s.held.assign(settings->window, HeldRecord{});
  s.sweep_interval_ns = std::clamp<std::int64_t>(settings->ack_timeout_ns / 4, 1'000'000,
                                                 250'000'000);

  std::uint32_t control_slot = kNoGateSlot;
  if (settings->policy == Policy::spill) {
    // A spill group gates nobody: it maps the channel as a reader (the ring writable when
    // permitted, to repair a stalled claim at its cursor) and reads from the journal what the
    // ring lost.
    const OpenRequest request{RingAccess::write_if_permitted,
                              ControlAccess::write_or_register_as_reader, options.open_timeout,
                              true};
    auto mapped = ChannelMapping::open(channel, request);
    if (!mapped) return tl::unexpected(mapped.error());
    if ((*mapped)->info().incarnation != incarnation) {
      return tl::unexpected(Error{ErrorCode::busy, fmt::format("{}: the channel was re-created "
                                                               "while joining; try again",
                                                               where)});
    }
    s.channel = std::move(*mapped);
    s.ring = s.channel->ring();
    s.copy_buffer.resize(2 * core::frame_size(s.ring.max_message) + core::kCacheLine);
  } else {
    // The gate: a block subscriber registered at the group's floor (or the oldest record the
    // ring still holds), whose slot the group raises as records retire.
    const GroupPair floor = load_cursor(s.header->floor);
    SubscriberOptions gate;
    gate.policy = Policy::block;
    gate.manual_release = true;
    gate.start = StartFrom::sequence;
    gate.start_sequence = floor.second;
    gate.open_timeout = options.open_timeout;
    auto sub = Subscriber::open(channel, gate);
    if (!sub) return tl::unexpected(sub.error());
    if (sub->info().incarnation != incarnation) {
      return tl::unexpected(Error{ErrorCode::busy, fmt::format("{}: the channel was re-created "
                                                               "while joining; try again",
                                                               where)});
    }
    s.gate.emplace(std::move(*sub));
    SubscriberSlowState& slow = GroupAccess::slow(*s.gate);
    s.channel = slow.channel;
    s.ring = s.channel->ring();
    s.copy_buffer.resize(2 * core::frame_size(s.ring.max_message) + core::kCacheLine);
    control_slot = s.channel->control_ref().index_of(*slow.slot);
    // The subscriber registered at a boundary near the floor, possibly past it (a full ring makes
    // it keep a margin). The gate must be at the floor exactly: a record at or after it may still
    // be needed (handed out again, or not yet handed out). Put there before the member is active,
    // so no peer raises it meanwhile; then announced like any new gate: a producer either sees the
    // new epoch and respects it, or made its claim before, and a record it overwrote is found
    // lapped when read (and retired as lost), never handed on torn.
    {
      const GroupPair at = load_cursor(s.header->floor);
      // release: producers that acquire the position see the slot as registered.
      slow.slot->position.store(at.first, std::memory_order_release);
      slow.slot->next_sequence.store(at.second, std::memory_order_relaxed);  // relaxed: for tools
      // seq_cst: as SubscriberSlowState::announce_gate.
      s.channel->control().gate_epoch.fetch_add(1, std::memory_order_seq_cst);
      if (s.channel->info().single_producer) barrier_all_cpus();
    }

}

  // A member slot: the lowest free one (freeing dead members' slots once if none is).
  for (int pass = 0; pass < 2 && s.me == nullptr; ++pass) {
    for (std::uint32_t i = 0; i < kMaxGroupMembers; ++i) {
      GroupMember& m = s.members[i];
      std::uint64_t word = member_word(0, MemberState::free);
      // relaxed: only a first look.
      if (m.word.load(std::memory_order_relaxed) != word) continue;
      // relaxed: a unique number; nothing is published through it.
      std::uint32_t token = static_cast<std::uint32_t>(
          s.header->next_token.fetch_add(1, std::memory_order_relaxed) + 1);  // relaxed: above
      if (token == 0) token = 1;
      // acq_rel: the slot is ours if we win; what the last holder wrote is visible.
      if (!m.word.compare_exchange_strong(word,
                                          member_word(token, MemberState::joining, s.self.pid),
                                          std::memory_order_acq_rel)) {  // acq_rel: see above
        continue;
      }
      m.pid = s.self.pid;
      m.start_time = s.self.start_time;
      m.control_slot = control_slot;
      m.joined_ns = realtime_ns();
      // relaxed (all): statistics, published by the release below.
      m.heartbeat_ns.store(m.joined_ns, std::memory_order_relaxed);
      m.delivered.store(0, std::memory_order_relaxed);    // relaxed: statistic
      m.acked.store(0, std::memory_order_relaxed);        // relaxed: statistic
      m.nacked.store(0, std::memory_order_relaxed);       // relaxed: statistic
      m.redelivered.store(0, std::memory_order_relaxed);  // relaxed: statistic
      m.fenced.store(0, std::memory_order_relaxed);       // relaxed: statistic
      m.held.store(0, std::memory_order_relaxed);         // relaxed: statistic
      // release: peers that see us active see our identity and our gate's slot index. A CAS: a
      // peer may have freed the slot meanwhile if it judged us dead; then we look again.
      std::uint64_t joining = member_word(token, MemberState::joining, s.self.pid);
      if (!m.word.compare_exchange_strong(joining, member_word(token, MemberState::active,
                                                               s.self.pid),
                                          std::memory_order_release,  // relaxed: retry
                                          std::memory_order_relaxed)) {  // release: see above
        continue;
      }
      s.index = i;
      s.token = token;
      s.me = &m;
      break;
    }
    if (s.me == nullptr) s.housekeeping(true);
  }
  if (s.me == nullptr) {
    return tl::unexpected(Error{ErrorCode::busy, fmt::format("{}: all {} member slots are in use",
                                                             where, kMaxGroupMembers)});
  }
  s.advance_floor();
  s.raise_gates();
  return consumer;
}

GroupConsumer::GroupConsumer(GroupConsumer&&) noexcept = default;
GroupConsumer& GroupConsumer::operator=(GroupConsumer&&) noexcept = default;
GroupConsumer::~GroupConsumer() = default;

std::size_t GroupConsumer::poll_sink(Sink sink, std::size_t max_messages) {
  detail::GroupState& s = *state_;
  std::size_t n = 0;
  while (n < max_messages && s.deliver_one(sink)) ++n;
  if (n == 0) {
    s.housekeeping(false);
  } else if (detail::group_clock_ns() >= s.next_lease_sweep_ns) {
    // Records keep flowing, so the idle housekeeping may not run for long: the leases are still
    // checked at its pace (no system call: member liveness waits for an idle poll, which a
    // window filled by a dead member's records brings).
    s.next_lease_sweep_ns = detail::group_clock_ns() + s.sweep_interval_ns;
    s.take_back_expired(detail::group_clock_ns());
    s.advance_floor();
  }
  s.publish_counters();
  return n;
}

AckStatus GroupConsumer::ack(std::uint64_t sequence) noexcept {
  return state_->finish(sequence, detail::EntryState::acked);
}

std::size_t GroupConsumer::ack_through(std::uint64_t sequence) noexcept {
  detail::GroupState& s = *state_;
  std::size_t n = 0;
  // Oldest first, so the floor moves once over the run instead of stopping at each.
  const std::uint64_t from = detail::load_cursor(s.header->floor).second;
  for (std::uint64_t q = from; q <= sequence && s.held_count > 0 && q < from + s.held.size(); ++q) {
    if (s.held[q & s.window_mask].sequence == q && s.finish(q, detail::EntryState::acked) ==
                                                       AckStatus::ok) {
      ++n;
    }
  }
  // Records below the floor we still hold were taken back and retired by others: fenced.
  for (detail::HeldRecord& h : s.held) {
    if (h.sequence != 0 && h.sequence <= sequence && h.sequence < from) {
      s.finish(h.sequence, detail::EntryState::acked);
    }
  }
  return n;
}

AckStatus GroupConsumer::nack(std::uint64_t sequence, std::string_view reason) noexcept {
  return state_->nack(sequence, reason);
}

AckStatus GroupConsumer::pin(std::uint64_t sequence) noexcept { return state_->pin(sequence); }

std::uint64_t GroupConsumer::retired_through() const noexcept {
  return detail::load_cursor(state_->header->floor).second;
}

bool GroupConsumer::wait(std::chrono::nanoseconds timeout, std::chrono::nanoseconds spin) noexcept {
  detail::GroupState& s = *state_;
  auto work_ready = [&] {
    // Orphans waiting: ready unless the last scan found none of them takeable (keyed records
    // waiting for their key, a dead letter that cannot be sent) and nothing has changed since.
    if (s.header->orphaned.load(std::memory_order_relaxed) != 0 &&  // relaxed: a hint
        s.retirement_epoch() != s.idle_orphan_epoch) {
      return true;
    }
    const detail::GroupPair cursor = detail::load_cursor(s.header->dispatch);
    const detail::GroupPair floor = detail::load_cursor(s.header->floor);
    if (cursor.second >= floor.second + s.settings.window) return false;
    if (cursor.first == detail::kNoRingPosition) {
      // A spill group reading from the journal: ready once the journaler has written it.
      // acquire: pairs with the journaler's release of its progress.
      return s.channel->channel_control().journal_written.load(std::memory_order_acquire) >=
             cursor.second;
    }
    // A position no writer produces (garbage in the group's state): poll reports it as corrupt.
    if (!core::is_frame_aligned(cursor.first)) return true;
    // acquire: as any reader's look at a commit word (core/ring_reader.hpp).
    const std::uint64_t word = s.ring.header_at(cursor.first)->commit.load(std::memory_order_acquire);
    return word == s.ring.committed(cursor.first);
  };
  const std::int64_t start = detail::monotonic_ns();
  const std::int64_t spin_until = start + spin.count();
  const std::int64_t deadline = start + timeout.count();
  for (std::uint32_t i = 0;; ++i) {
    if (work_ready()) return true;
    if ((i & 255) == 255 && detail::monotonic_ns() >= spin_until) break;
  }
  auto& ctl = s.channel->control();
  for (;;) {
    // acquire: pairs with the producer's release increment of the wake word.
    const std::uint32_t w = ctl.wake_word.load(std::memory_order_acquire);
    // seq_cst: arms the producers' wake-up before the last look (see Subscriber::wait).
    ctl.waiters.exchange(1, std::memory_order_seq_cst);
    if (work_ready()) return true;
    s.housekeeping(false);
    if (work_ready()) return true;
    const std::int64_t now = detail::monotonic_ns();
    if (now >= deadline) return false;
    // Slices of at most 1 ms: records taken back by housekeeping wake nobody.
    detail::futex_wait(ctl.wake_word, w, std::min<std::int64_t>(deadline - now, 1'000'000));
  }
}

GroupStatus GroupConsumer::status() const noexcept { return state_->status; }
const std::string& GroupConsumer::last_error() const noexcept { return state_->last_error; }
std::uint64_t GroupConsumer::delivered() const noexcept { return state_->delivered; }
std::uint64_t GroupConsumer::acked() const noexcept { return state_->acked; }
std::uint64_t GroupConsumer::nacked() const noexcept { return state_->nacked; }
std::uint64_t GroupConsumer::redelivered() const noexcept { return state_->redelivered; }
std::uint64_t GroupConsumer::fenced() const noexcept { return state_->fenced; }
std::size_t GroupConsumer::held() const noexcept { return state_->held_count; }
std::uint32_t GroupConsumer::member_index() const noexcept { return state_->index; }
const GroupOptions& GroupConsumer::settings() const noexcept { return state_->settings; }

}  // namespace shmbus
