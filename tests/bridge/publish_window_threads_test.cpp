// Bridge out's window (bridge/publish_window.hpp): the hand-off of each publish's outcome from
// libnats' ack thread to the bridge's thread, with a thread standing in for libnats (no server:
// the ThreadSanitizer build runs this, and libnats is not instrumented). Every record's outcome
// must arrive in its own slot, in order of draining, with the message kept only for a failure.
#include "bridge/publish_window.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bridge/nats_handles.hpp"

namespace shmbus::bridge {
namespace {

natsMsg* message_for(std::uint64_t sequence) {
  natsMsg* msg = nullptr;
  const std::string payload = "payload " + std::to_string(sequence);
  EXPECT_EQ(natsMsg_Create(&msg, "shmbus.test", nullptr, payload.data(),
                           static_cast<int>(payload.size())),
            NATS_OK);
  EXPECT_EQ(natsMsgHeader_Set(msg, "Shmbus-Seq", std::to_string(sequence).c_str()), NATS_OK);
  return msg;
}

WindowEntry entry_for(std::uint64_t sequence) {
  WindowEntry e;
  e.headers.kind = RecordKind::data;
  e.headers.incarnation = 1;
  e.headers.sequence = sequence;
  e.headers.origin = "h";
  e.id = data_msg_id(1, sequence);
  return e;
}

// Every 7th record fails (as a full store would answer), the rest are stored.
bool fails(std::uint64_t sequence) { return sequence % 7 == 0; }

class PublishWindowThreads : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(open_library().has_value()); }
  void TearDown() override { close_library(); }
};

TEST_F(PublishWindowThreads, EveryOutcomeReachesItsRecordAcrossThreads) {
  constexpr std::uint64_t kRecords = 20000;
  PublishWindow window(64);
  // What "libnats" has been handed and not yet answered; the ack thread answers in order.
  std::mutex mu;
  std::deque<natsMsg*> sent;
  std::atomic<bool> done{false};
  std::thread acker([&] {
    for (;;) {
      natsMsg* msg = nullptr;
      {
        std::lock_guard lock(mu);
        if (!sent.empty()) {
          msg = sent.front();
          sent.pop_front();
        }
      }
      if (msg == nullptr) {
        // relaxed: a flag; the queue's mutex orders the messages themselves.
        if (done.load(std::memory_order_relaxed)) return;
        std::this_thread::yield();
        continue;
      }
      const char* seq_text = nullptr;
      if (natsMsgHeader_Get(msg, "Shmbus-Seq", &seq_text) != NATS_OK || seq_text == nullptr) {
        ADD_FAILURE() << "a message without Shmbus-Seq";
        natsMsg_Destroy(msg);
        continue;
      }
      const std::uint64_t seq = std::stoull(seq_text);
      if (fails(seq)) {
        jsPubAckErr pae{};
        pae.Msg = msg;
        pae.Err = NATS_ERR;
        pae.ErrCode = JSInsufficientResourcesErr;
        pae.ErrText = "insufficient resources";
        PublishWindow::on_ack(nullptr, msg, nullptr, &pae, &window);
      } else {
        jsPubAck pa{};
        pa.Sequence = seq;
        PublishWindow::on_ack(nullptr, msg, &pa, nullptr, &window);
      }
    }
  });

  std::uint64_t next = 1;
  std::uint64_t drained = 0;
  std::uint64_t failures = 0;
  while (drained < kRecords) {
    while (next <= kRecords && window.size() < window.capacity() && window.has_room(next)) {
      window.add(entry_for(next));
      natsMsg* msg = message_for(next);
      std::lock_guard lock(mu);
      sent.push_back(msg);
      ++next;
    }
    while (!window.empty() && window.state(0) != PublishWindow::State::in_flight) {
      const std::uint64_t seq = window.oldest().headers.sequence;
      ASSERT_EQ(seq, drained + 1);
      const PublishOutcome& oc = window.outcome(0);
      if (fails(seq)) {
        ASSERT_EQ(window.state(0), PublishWindow::State::failed) << seq;
        EXPECT_EQ(oc.js_code, JSInsufficientResourcesErr);
        EXPECT_EQ(oc.text, "insufficient resources");
        MsgPtr kept(window.take_message(0));
        ASSERT_NE(kept, nullptr) << seq;
        EXPECT_EQ(std::string(natsMsg_GetData(kept.get()),
                              static_cast<std::size_t>(natsMsg_GetDataLength(kept.get()))),
                  "payload " + std::to_string(seq));
        ++failures;
      } else {
        ASSERT_EQ(window.state(0), PublishWindow::State::stored) << seq;
        EXPECT_EQ(oc.stream_seq, seq);
        EXPECT_EQ(window.take_message(0), nullptr) << seq;
      }
      (void)window.pop_oldest();
      ++drained;
    }
    std::this_thread::yield();
  }
  // relaxed: as in the ack thread.
  done.store(true, std::memory_order_relaxed);
  acker.join();
  EXPECT_EQ(failures, kRecords / 7);
  EXPECT_EQ(window.strays(), 0u);
}

TEST_F(PublishWindowThreads, AnAckForNoArmedRecordIsAStrayAndIsDestroyed) {
  PublishWindow window(8);
  window.add(entry_for(3));
  std::thread acker([&] {
    jsPubAck pa{};
    PublishWindow::on_ack(nullptr, message_for(4), &pa, nullptr, &window);   // another slot
    PublishWindow::on_ack(nullptr, message_for(11), &pa, nullptr, &window);  // 3's slot, not 3
    PublishWindow::on_ack(nullptr, message_for(3), &pa, nullptr, &window);
    PublishWindow::on_ack(nullptr, message_for(3), &pa, nullptr, &window);   // a second ack
  });
  acker.join();
  EXPECT_EQ(window.strays(), 3u);
  ASSERT_EQ(window.size(), 1u);
  EXPECT_EQ(window.state(0), PublishWindow::State::stored);
}

TEST_F(PublishWindowThreads, ARecordTooFarAheadWaitsForTheOldestToResolve) {
  PublishWindow window(4);
  window.add(entry_for(10));
  EXPECT_TRUE(window.has_room(13));
  EXPECT_FALSE(window.has_room(14));  // would share 10's slot
  (void)window.pop_oldest();
  EXPECT_TRUE(window.has_room(14));
}

}  // namespace
}  // namespace shmbus::bridge
