// One run of `shmbus bench bridge`: a fresh source channel, bridge out (shmbus::bridge::Out) on a
// thread of its own publishing it into a fresh JetStream stream, bridge in (shmbus::bridge::In)
// on another thread applying the stream to a fresh destination channel, a block subscriber
// thread reading that channel, and the calling thread publishing:
//
//   publisher -> channel A -> Out -> JetStream stream -> In -> channel B -> subscriber
//
// Out and In run with different hosts ("bench-out", "bench-in"), as on two machines, so that In
// applies the records instead of skipping them as its own. A first record (index 0) goes through
// alone and is waited for: the stream exists and both bridges run before anything is timed. Then
// `count` records follow, as fast as the bridges take them (rate 0) or paced at `rate` per second.
//
// Payload (size >= 16 bytes): the send time (steady_clock, CLOCK_MONOTONIC, ns) in bytes 0-7, the
// index in bytes 8-15, then byte j = (index * 131 + j) mod 256. The subscriber checks every record
// it receives: nothing lost before it, the size, the index (consecutive from 0), the channel
// sequence (consecutive) and every payload byte. A record missing, repeated, out of order or
// altered fails the run, as does a stall (nothing received for `stall_timeout`). Latency is the
// subscriber's receive time minus the send time in the payload (one host, one clock).
//
// The caller removes nothing: the run removes both channels and deletes the stream, whatever
// happened. Throws std::runtime_error with what went wrong.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/latency_histogram.hpp"

namespace shmbus::bench {

inline constexpr std::size_t kBridgeRecordHeaderBytes = 16;  // send time, index

struct BridgeRunPlan {
  std::string nats_url;
  std::string source_channel;       // bench.bridge.a.<pid>
  std::string destination_channel;  // bench.bridge.b.<pid>
  std::string stream;               // unique per run
  std::string subject;              // unique per run: a stream's subject is its own
  std::size_t size = 64;
  std::uint64_t count = 0;  // timed records, after the first one
  double rate = 0;          // records per second; 0: as fast as the bridges take them
  std::chrono::seconds stall_timeout{30};
};

struct BridgeRunResult {
  std::uint64_t received = 0;  // timed records received, checked (= count)
  // count over the span from the first timed record's send time to the last one's receive time.
  double records_per_s = 0;
  double seconds = 0;
  core::LatencySnapshot latency{};  // receive time minus send time of every timed record
};

BridgeRunResult run_bridge_once(const BridgeRunPlan& plan);

// The payload of record `index` (size >= kBridgeRecordHeaderBytes), sent at `send_ns`.
void fill_bridge_record(std::byte* payload, std::size_t size, std::uint64_t index,
                        std::int64_t send_ns) noexcept;

// Empty when `payload` is record `index` of `size` bytes, else what differs. Its send time is
// stored in *send_ns.
std::string check_bridge_record(const std::byte* payload, std::size_t payload_size,
                                std::size_t size, std::uint64_t index, std::int64_t* send_ns);

}  // namespace shmbus::bench
