// The NATS JetStream bridge as a library (shmbus::bridge, libshmbus_bridge; it brings libnats):
//
//   bridge_out.hpp  Out: a channel's records, in order, to a JetStream stream
//
// docs/bridge-design.md describes the wire format, the chain of expected last ids and recovery.
#pragma once

#include "bridge_out.hpp"
