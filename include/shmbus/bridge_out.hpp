// Bridge out: publishes every record of a channel, in sequence order, to a NATS JetStream stream
// (`shmbus bridge out`, docs/bridge-design.md). Part of the shmbus::bridge library
// (libshmbus_bridge, which brings libnats); nothing of NATS is in this header.
//
//   shmbus::bridge::OutOptions o;
//   o.channel = "md.eurusd";
//   o.nats_url = "nats://127.0.0.1:4222";
//   o.stream = "MD_EURUSD";
//   auto out = shmbus::bridge::Out::open(o).value();
//   std::atomic<bool> stop{false};
//   auto done = out.run(stop);  // until stop is set, or a fatal error
//
// Each record is one NATS message: the payload byte for byte, headers carrying the channel
// incarnation, sequence, publish time, origin host and record type, and Nats-Msg-Id =
// "<incarnation>:<sequence>". Every publish expects the stream's last message id to be its
// predecessor's, so the stream is always a gapless, duplicate-free prefix of the channel. The
// bridge reads as a named subscriber with manual release: the ring (or the journal) keeps every
// record the stream has not acknowledged. Sequences neither holds any more are published as one
// GAP record naming the exact range; nothing is skipped silently.
//
// A bridge is not on the application's hot path: libnats allocates for every message and runs
// threads of its own. Run it as its own process (`shmbus bridge out`) or on a thread of its own.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "options.hpp"
#include "result.hpp"

namespace shmbus::bridge {

struct OutOptions {
  std::string channel;
  std::string nats_url;  // "nats://host:port"; a comma-separated list is allowed
  std::string stream;    // the JetStream stream, holding exactly one subject: `subject`
  std::string subject;   // "" = "shmbus.<channel>"
  std::string name;      // the named subscriber; "" = "bridge-out.<stream>"
  std::string host;      // Shmbus-Origin; "" = gethostname(); [A-Za-z0-9._-]{1,64}
  std::string journal_dir;  // "" = the channel's current or last journaler's directory
  Policy policy = Policy::block;  // block or spill
  std::chrono::milliseconds liveness_timeout{5000};  // of the block subscriber
  std::uint32_t window = 4096;    // published, unacknowledged records at most
  std::chrono::milliseconds ack_timeout{2000};  // a publish unacknowledged this long is resent
  bool create_stream = true;      // create the stream when it is missing
  std::int64_t max_bytes = -1;    // the created stream's MaxBytes (-1: unlimited)
  // Told what an operator should know: each GAP record and why, a resume point, the stream
  // refusing records, a recovery. Empty: one line each on stderr ("shmbus bridge out: ...").
  std::function<void(const std::string&)> notice;
};

// What the bridge has done (Out::stats; `shmbus stat` shows the same from shared memory).
struct OutStats {
  std::string state;       // connecting, running, recovering, holding back, stopped
  std::string last_error;  // why it recovers or holds back; empty when running cleanly
  std::uint64_t acked_through = 0;  // every sequence up to it is in the stream
  std::uint64_t acked = 0;          // records (data and GAP) the stream acknowledged
  std::uint64_t in_flight = 0;
  std::uint64_t window = 0;
  std::uint64_t resends = 0;
  std::uint64_t recoveries = 0;
  std::uint64_t gaps = 0;           // GAP records published
  std::uint64_t gap_sequences = 0;  // the sequences they cover
  std::uint64_t lag_records = 0;    // read from the channel, not yet acknowledged
  std::int64_t lag_ns = 0;          // now - publish time of the oldest unacknowledged record
};

class Out {
 public:
  // Checks the options, opens the channel's named subscriber and starts connecting (a server
  // not up yet is not an error: run() waits for it, in state `connecting`).
  static Result<Out> open(const OutOptions& options);

  Out(Out&&) noexcept;
  Out& operator=(Out&&) noexcept;
  ~Out();

  // Runs until `stop` is set (then waits up to the ack timeout for what is in flight and returns
  // ok) or a fatal error: the stream is not the bridge's (other subjects, a last message not
  // published by a bridge, another writer), the subscriber was evicted, the records do not fit
  // the server's max payload. Errors of the server (timeouts, a full store) are not fatal: the
  // bridge recovers and, while the stream refuses records, holds back.
  Result<void> run(const std::atomic<bool>& stop);

  // A snapshot, for the thread that calls run() (or after it returned).
  OutStats stats() const;

 private:
  struct Impl;
  explicit Out(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Releases libnats' global state (its threads); call once at exit, after every Out and In is
// destroyed, so that a leak checker finds nothing.
void release_nats() noexcept;

}  // namespace shmbus::bridge
