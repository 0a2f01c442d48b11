// shmbus through its C API (include/shmbus/shmbus.h) as a pingpong transport: what the C calls
// cost beside the C++ ones, measured in the same run (`shmbus bench pingpong --only shmbus-sp
// --only shmbus-c`).
#pragma once

#include <memory>

#include "bench/harness/transport.hpp"

namespace shmbus::bench {

// "shmbus-c": the same channels as "shmbus-sp" (single-producer, block subscribers from the
// earliest record, zero-copy claim/commit, one record per poll), used only through shmbus.h calls.
std::unique_ptr<PingPongTransport> shmbus_c_pingpong_transport();

}  // namespace shmbus::bench
