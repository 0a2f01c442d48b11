// Bridge out's window of asynchronous JetStream publishes, and the hand-off of their outcomes from
// libnats' thread to the bridge's.
//
// libnats calls the ack handler (on_ack) on the delivery thread of the context's reply
// subscription, one call at a time, for an ack, an error reply or a timeout (jsPubOptions.MaxWait).
// The handler only writes the outcome into the record's slot and release-stores the slot's state;
// the bridge's thread acquires the state and does everything else (advancing acked_through,
// releasing the subscriber, recovery). Nothing is locked.
//
// Slots are found by the record's first sequence (its Shmbus-Seq header) modulo the window: a
// record may be added only while its first sequence lies less than `capacity` past the oldest
// unresolved one (has_room), so the records in flight never share a slot. A GAP spanning more
// than the window therefore waits until everything before it is acknowledged: GAPs are rare.
//
// Not a hot path: libnats allocates for every message, and so do the error texts here.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>

#include "bridge/record_headers.hpp"
#include "shmbus/subscriber.hpp"

namespace shmbus::bridge {

// What the stream said about one publish.
struct PublishOutcome {
  natsStatus status = NATS_OK;  // NATS_OK: stored (or a duplicate of a stored one)
  jsErrCode js_code = static_cast<jsErrCode>(0);
  std::string text;             // the error's text (empty when stored)
  bool duplicate = false;
  std::uint64_t stream_seq = 0;
};

// A record of the window, as the bridge's thread keeps it (the ack thread never touches this).
struct WindowEntry {
  RecordHeaders headers;
  std::string id;                // Nats-Msg-Id
  Subscriber::Cursor release{};  // release this once the record is acknowledged
  std::int64_t published_ns = 0; // when it was (last) sent, CLOCK_REALTIME
};

class PublishWindow {
 public:
  explicit PublishWindow(std::uint32_t capacity);
  ~PublishWindow();  // destroys the messages handed back and not taken
  PublishWindow(const PublishWindow&) = delete;
  PublishWindow& operator=(const PublishWindow&) = delete;

  std::uint32_t capacity() const noexcept { return capacity_; }
  std::size_t size() const noexcept { return entries_.size(); }  // unresolved or not yet drained
  bool empty() const noexcept { return entries_.empty(); }
  const WindowEntry& oldest() const noexcept { return entries_.front().entry; }
  const WindowEntry& at(std::size_t i) const noexcept { return entries_[i].entry; }

  // Whether a record beginning at `first` may be added now (see the header comment).
  bool has_room(std::uint64_t first) const noexcept;

  // Adds the record just before it is handed to js_PublishMsgAsync (so that its ack finds the
  // slot armed). The bridge's thread only.
  void add(WindowEntry entry);
  // Re-arms entry i for a resend (recovery), before its new js_PublishMsgAsync.
  void rearm(std::size_t i, std::int64_t published_ns);
  // Takes back entry i's arming after js_PublishMsgAsync itself failed (no ack will come),
  // keeping `msg` (still the caller's after the failed call) for the resend.
  void disarm(std::size_t i, const PublishOutcome& outcome, natsMsg* msg);

  // libnats' ack handler (its thread). Owns `msg`: destroys it when the record was stored, keeps
  // it in the slot for a resend otherwise.
  static void on_ack(jsCtx* js, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae,
                     void* closure) noexcept;

  enum class State : std::uint8_t { in_flight, stored, failed };
  // Entry i's state as the ack thread last left it (acquire), and its outcome once resolved.
  State state(std::size_t i) const noexcept;
  const PublishOutcome& outcome(std::size_t i) const noexcept;
  // The message handed back with a failure (the payload, for a resend); null when none. The caller
  // owns it afterwards.
  natsMsg* take_message(std::size_t i) noexcept;

  // Removes the oldest entry, which must be resolved (state() not in_flight) unless the ack
  // handler can no longer run (the JetStream context is gone); destroys a message still handed
  // back for it.
  WindowEntry pop_oldest() noexcept;

  // Acks that found no armed slot (a late ack of a publish already given up): ignored, counted.
  std::uint64_t strays() const noexcept;

 private:
  struct Slot;
  struct Item {
    WindowEntry entry;
    Slot* slot;
  };
  void store_outcome(natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae) noexcept;
  Slot& slot_for(std::uint64_t first) const noexcept;

  std::uint32_t capacity_;
  std::unique_ptr<Slot[]> slots_;
  std::deque<Item> entries_;
  std::atomic<std::uint64_t> strays_{0};
};

}  // namespace shmbus::bridge
