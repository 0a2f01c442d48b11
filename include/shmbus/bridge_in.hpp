// Bridge in: a durable JetStream pull consumer that publishes a stream's shmbus records into a
// local channel, acknowledging them only after the local commit (docs/bridge-design.md).
//
//   shmbus::bridge::InOptions o;
//   o.channel = "md.eurusd.mirror"; o.nats_url = "nats://127.0.0.1:4222"; o.stream = "MD";
//   auto in = shmbus::bridge::In::open(o).value();
//   std::atomic<bool> stop{false};
//   auto done = in.run(stop);  // until stop is set, or an error that must not be skipped
//
// Bridge in is the local channel's only producer (ChannelOptions::single_producer): it creates the
// channel that way, and refuses an existing multi-producer one. Each record is applied once, in
// stream order, whatever kills it: its applied position lives in the bridge-in object of the
// channel's incarnation (`shmbus stat` shows it). GAP records and records the stream lost become
// lost sequences the local subscribers see (Message::lost_before); records that came from this
// host are never published again (no loops). Part of libshmbus_bridge, which links libnats (its
// three threads run in the process that uses this class).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "result.hpp"

namespace shmbus::bridge {

struct InOptions {
  std::string channel;   // the local channel the records go into
  std::string nats_url;  // "nats://127.0.0.1:4222"
  std::string stream;    // the JetStream stream bridge out writes
  std::string subject;   // "": the stream's subject (it must have exactly one)
  std::string durable;   // "": "shmbus-in-<host>-<channel>", dots as underscores
  std::string host;      // "": gethostname(); records whose Shmbus-Origin is this are skipped
  std::uint32_t batch = 256;  // messages per fetch (1 to 4096); the consumer allows 4x unacked
  std::chrono::milliseconds ack_wait{30000};  // the consumer's AckWait
  // Creating the local channel: its capacity and max_message (0: ChannelOptions' defaults). When
  // both are 0 an existing channel is taken as it is; otherwise it must match them.
  std::uint64_t capacity = 0;
  std::uint32_t max_message = 0;
  // One line per event an operator should see (invalid messages, stream gaps, reconnects,
  // restarts of the consumer); the command prints them to stderr. None when empty.
  std::function<void(std::string_view)> report;
};

class In {
 public:
  // Opens (or creates) the local channel as its single producer, takes the bridge-in object
  // (refused while another bridge in of this channel and stream runs), settles what a killed
  // predecessor left, and starts connecting (the server may come later: run() waits for it).
  static Result<In> open(const InOptions& options);

  In(In&&) noexcept;
  In& operator=(In&&) noexcept;
  ~In();

  // Fetches, applies and acknowledges until `stop` is set (returns then, within about a second),
  // or until an error that would otherwise drop a record (a record larger than the channel's
  // max_message, a corrupt ring): then it returns that error. Connection losses, a server
  // restart and a missing stream are waited out.
  Result<void> run(const std::atomic<bool>& stop);

  const std::string& host() const noexcept;
  const std::string& durable() const noexcept;

 private:
  struct State;
  explicit In(std::unique_ptr<State> state) noexcept;
  std::unique_ptr<State> state_;
};

}  // namespace shmbus::bridge
