// Deletes the JetStream stream a `shmbus bench bridge` run created, so that a server given with
// --nats keeps nothing of the bench (and the next run's subject is free). The one place the bench
// talks to NATS itself; the bridges are shmbus::bridge::Out and In.
#pragma once

#include <string>

namespace shmbus::bench {

// Empty when the stream is gone (deleted now, or it never existed), else why not.
std::string delete_bench_stream(const std::string& nats_url, const std::string& stream);

}  // namespace shmbus::bench
