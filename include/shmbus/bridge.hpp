// The NATS JetStream bridge as a library (shmbus::bridge, libshmbus_bridge; it brings libnats):
//
//   bridge_out.hpp  Out: a channel's records, in order, to a JetStream stream
//   bridge_in.hpp   In: a JetStream stream's records into a local channel, each applied once
//
// docs/bridge-design.md describes the wire format, the chain of expected last ids and recovery.
#pragma once

#include "bridge_in.hpp"
#include "bridge_out.hpp"
