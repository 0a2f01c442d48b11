// shmbus itself as a transport of the cross-process harness, measured beside the baselines.
#pragma once

#include <memory>
#include <string>

#include "bench/harness/transport.hpp"

namespace shmbus::bench {

// How shmbus is set up for a run. The variants beyond the channel kind exist to measure what the
// statistics cost, side by side with the default in one run (`--only`).
struct ShmbusVariant {
  bool single_producer = false;
  bool counters = true;            // ChannelOptions::counters (the default)
  bool latency_histogram = false;  // SubscriberOptions::latency_histogram
  // "shmbus" or "shmbus-sp", then "-nocounters" and/or "-hist".
  std::string name() const;
};

// Pingpong over two channels (one each way), block subscribers, zero-copy claim/commit.
// "shmbus" uses default (multi-producer) channels, "shmbus-sp" single-producer ones.
std::unique_ptr<PingPongTransport> shmbus_pingpong_transport(bool single_producer);
std::unique_ptr<PingPongTransport> shmbus_pingpong_transport(const ShmbusVariant& variant);
// One channel, one producer, one block subscriber that copies each payload out. The producer
// claims batches of up to 32 messages and the subscriber polls up to 256 at a time
// ("shmbus", "shmbus-sp").
std::unique_ptr<ThroughputTransport> shmbus_throughput_transport(bool single_producer);
// The same channel used one message at a time, as a simple application does: one
// Publisher::try_publish per message, one poll(handler, 1) per message
// ("shmbus-single", "shmbus-sp-single").
std::unique_ptr<ThroughputTransport> shmbus_single_message_transport(bool single_producer);

}  // namespace shmbus::bench
