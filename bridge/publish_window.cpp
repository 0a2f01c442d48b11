#include "bridge/publish_window.hpp"

#include <charconv>
#include <cstring>
#include <utility>

namespace shmbus::bridge {

struct PublishWindow::Slot {
  // Written by the bridge's thread while the slot is not armed (add, rearm); read by the ack
  // thread only after its acquire of `armed` below.
  std::uint64_t first = 0;
  // Written by the ack thread before its release store of `state` (or by the bridge's thread in
  // disarm, which the ack thread then no longer reaches); read by the bridge's thread after its
  // acquire load of `state`.
  PublishOutcome outcome;
  natsMsg* msg = nullptr;
  std::atomic<State> state{State::stored};
  // True from add/rearm until the one outcome of that publish is taken: the ack thread and
  // disarm both take it by exchange, so exactly one of them writes the outcome.
  std::atomic<bool> armed{false};
};

PublishWindow::PublishWindow(std::uint32_t capacity)
    : capacity_(capacity == 0 ? 1 : capacity), slots_(new Slot[capacity_]) {}

PublishWindow::~PublishWindow() {
  // The bridge destroys its JetStream context (which stops the ack handler) before this.
  for (std::uint32_t i = 0; i < capacity_; ++i) natsMsg_Destroy(slots_[i].msg);
}

PublishWindow::Slot& PublishWindow::slot_for(std::uint64_t first) const noexcept {
  return slots_[first % capacity_];
}

bool PublishWindow::has_room(std::uint64_t first) const noexcept {
  if (entries_.empty()) return true;
  return first - entries_.front().entry.headers.sequence < capacity_;
}

void PublishWindow::add(WindowEntry entry) {
  Slot& slot = slot_for(entry.headers.sequence);
  slot.first = entry.headers.sequence;
  slot.outcome = PublishOutcome{};
  natsMsg_Destroy(slot.msg);  // none expected: pop_oldest destroyed it
  slot.msg = nullptr;
  // relaxed: the ack thread reads the state only after acquiring `armed`, stored below.
  slot.state.store(State::in_flight, std::memory_order_relaxed);
  // release: publishes `first` and the reset outcome to the ack thread's acquire in on_ack.
  slot.armed.store(true, std::memory_order_release);
  entries_.push_back(Item{std::move(entry), &slot});
}

void PublishWindow::rearm(std::size_t i, std::int64_t published_ns) {
  Item& item = entries_[i];
  item.entry.published_ns = published_ns;
  Slot& slot = *item.slot;
  slot.outcome = PublishOutcome{};
  natsMsg_Destroy(slot.msg);  // the caller took it with take_message; else it is not needed now
  slot.msg = nullptr;
  // relaxed: as in add.
  slot.state.store(State::in_flight, std::memory_order_relaxed);
  // release: as in add.
  slot.armed.store(true, std::memory_order_release);
}

void PublishWindow::disarm(std::size_t i, const PublishOutcome& outcome, natsMsg* msg) {
  Slot& slot = *entries_[i].slot;
  // acq_rel: takes the one outcome of this publish from the ack thread's exchange (which cannot
  // come: js_PublishMsgAsync failed), ordered after add's release.
  if (!slot.armed.exchange(false, std::memory_order_acq_rel)) {
    natsMsg_Destroy(msg);
    return;
  }
  slot.outcome = outcome;
  natsMsg_Destroy(slot.msg);
  slot.msg = msg;
  // relaxed: only this thread reads it now (the slot is disarmed).
  slot.state.store(State::failed, std::memory_order_relaxed);
}

void PublishWindow::on_ack(jsCtx*, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae,
                           void* closure) noexcept {
  static_cast<PublishWindow*>(closure)->store_outcome(msg, pa, pae);
}

void PublishWindow::store_outcome(natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae) noexcept {
  const char* seq_text = nullptr;
  std::uint64_t first = 0;
  bool parsed = false;
  if (msg != nullptr && natsMsgHeader_Get(msg, "Shmbus-Seq", &seq_text) == NATS_OK &&
      seq_text != nullptr) {
    const char* end = seq_text + std::strlen(seq_text);
    parsed = std::from_chars(seq_text, end, first).ptr == end;
  }
  Slot& slot = slot_for(first);
  // acq_rel: the acquire pairs with add/rearm's release (so `first` below is the armed record's);
  // the exchange makes this the one outcome of that publish.
  if (!parsed || !slot.armed.exchange(false, std::memory_order_acq_rel)) {
    // relaxed: a counter for the stats.
    strays_.fetch_add(1, std::memory_order_relaxed);
    natsMsg_Destroy(msg);
    return;
  }
  if (slot.first != first) {
    // Not the armed record's ack (a late one of a record given up): put the arming back.
    // release: as in add, for the ack that will come for the armed record.
    slot.armed.store(true, std::memory_order_release);
    // relaxed: a counter for the stats.
    strays_.fetch_add(1, std::memory_order_relaxed);
    natsMsg_Destroy(msg);
    return;
  }
  State result = State::stored;
  try {
    if (pae != nullptr && (pae->Err != NATS_OK || pae->ErrCode != 0)) {
      slot.outcome.status = pae->Err != NATS_OK ? pae->Err : NATS_ERR;
      slot.outcome.js_code = pae->ErrCode;
      slot.outcome.text = pae->ErrText != nullptr ? pae->ErrText : natsStatus_GetText(slot.outcome.status);
      result = State::failed;
    } else if (pa != nullptr) {
      slot.outcome.duplicate = pa->Duplicate;
      slot.outcome.stream_seq = pa->Sequence;
    }
  } catch (...) {  // the error text could not be allocated: the failure stands without it
    result = State::failed;
  }
  if (result == State::failed) {
    slot.msg = msg;  // kept for the resend; the bridge's thread takes it
  } else {
    natsMsg_Destroy(msg);
  }
  // release: publishes the outcome and msg above to the bridge's acquire in state().
  slot.state.store(result, std::memory_order_release);
}

PublishWindow::State PublishWindow::state(std::size_t i) const noexcept {
  // acquire: pairs with the ack thread's release store in store_outcome.
  return entries_[i].slot->state.load(std::memory_order_acquire);
}

const PublishOutcome& PublishWindow::outcome(std::size_t i) const noexcept {
  return entries_[i].slot->outcome;
}

natsMsg* PublishWindow::take_message(std::size_t i) noexcept {
  return std::exchange(entries_[i].slot->msg, nullptr);
}

WindowEntry PublishWindow::pop_oldest() noexcept {
  Item item = std::move(entries_.front());
  entries_.pop_front();
  // relaxed: the slot is resolved or given up; no publish of it is outstanding any more.
  item.slot->armed.store(false, std::memory_order_relaxed);
  natsMsg_Destroy(std::exchange(item.slot->msg, nullptr));
  return std::move(item.entry);
}

std::uint64_t PublishWindow::strays() const noexcept {
  // relaxed: a counter for the stats.
  return strays_.load(std::memory_order_relaxed);
}

}  // namespace shmbus::bridge
