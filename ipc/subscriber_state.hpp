// A Subscriber's state beyond what poll touches per message (include/shmbus/subscriber.hpp keeps
// that inline as detail::PollState): the channel mapping and the slot it holds, stall tracking,
// the spill policy's journal reader, the latency clock and the last error; and the slow paths of
// poll, which need both halves.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "ipc/channel.hpp"
#include "ipc/publish_clock.hpp"
#include "ipc/spill.hpp"
#include "shmbus/subscriber.hpp"

namespace shmbus::detail {

struct SubscriberSlowState {
  std::shared_ptr<ChannelMapping> channel;
  SubscriberSlot* slot = nullptr;  // ours in the control segment; null once detached
  // Who took the slot: this process. A peer that judged it dead may have evicted it and handed
  // the slot to another process meanwhile (the slot's own pid then names that one), so whether
  // the slot is still ours is judged against this, never against the slot's fields.
  ProcessId self;
  std::unique_ptr<std::byte[]> copy_buffer;  // PollState::copy_buffer points into it
  // Stall detection (on_empty): where we waited, the commit word we saw there, since when.
  std::uint64_t stall_position = UINT64_MAX;
  std::uint64_t stall_word = 0;
  std::int64_t stall_since_ns = 0;
  std::int64_t abandon_timeout_ns = 0;
  std::string last_error;
  std::optional<SpillState> spill;           // spill policy only
  std::optional<PublishClock> latency_clock;  // SubscriberOptions::latency_histogram only
  std::uint32_t position_publishes = 0;      // heartbeats are refreshed every 1024th
  // SubscriberOptions::filter's bytes, which PollState::filter points at.
  std::string filter_key;
  std::unique_ptr<std::uint64_t[]> filter_types;  // a bit per message type (65536 bits)

  // Stores how far `poll` has read (and its counters) in our slot: producers may overwrite what
  // lies before it.
  void publish_position(PollState& poll) noexcept;
  // Publishes the position unless the application releases it itself (manual release).
  void note_progress(PollState& poll) noexcept {
    if (!poll.manual_release) publish_position(poll);
  }
  void release(PollState& poll, const Subscriber::Cursor& cursor) noexcept;
  // Tells the producers a new gating reader is there, and moves it past what a claim made before
  // they could see it may overwrite.
  void announce_gate(PollState& poll, bool resumed) noexcept;
  // Leaves the slot (a named one keeps its position for a successor).
  void detach(PollState& poll) noexcept;
  // True while the slot still says it is ours and active. False once a peer evicted us (it judged
  // our process dead) or took the slot over: `poll` is then marked evicted, with last_error set,
  // and nothing may be written to the slot any more.
  bool still_owned(PollState& poll) noexcept;

  // What poll found, when it was not simply ready (subscriber.cpp).
  void on_empty(PollState& poll) noexcept;
  void on_lapped(PollState& poll) noexcept;
  void on_corrupt(PollState& poll) noexcept;
  // A place to resume at (`target`, read from shared memory) that RingReader::skip_to refused:
  // reports the ring corrupt (status, last_error) and leaves the reader where it is, so that the
  // jump is neither counted as lost nor delivered. `why` says what the reader was resuming from.
  void refuse_resync(PollState& poll, core::TailWord target, std::string_view why) noexcept;
  bool message_ready(const PollState& poll) const noexcept;

  // The spill policy (spill.cpp).
  void start_catch_up(PollState& poll) noexcept;
  bool journal_ready(const PollState& poll) const noexcept;
  bool catch_up_ready(PollState& poll) noexcept;
  bool journaler_alive() noexcept;
  bool try_rejoin(PollState& poll, bool need_margin) noexcept;
  void spill_fallback(PollState& poll, const std::string& why) noexcept;
  std::size_t poll_journal(PollState& poll, MessageSink sink, std::size_t max_messages) noexcept;
  // Hands one journal record on (a data record at `expected` or later), or accounts for it (a gap
  // record, one before `expected`). Moves `expected` past it. True when it went to the sink.
  bool deliver_from_journal(PollState& poll, const journal::JournalRecord& record,
                            std::uint64_t& expected, MessageSink sink) noexcept;
};

}  // namespace shmbus::detail
