// The part of core/ that the public headers compile from: the ring's record format and reader
// (Subscriber::poll is inline so that the handler inlines into the ring walk) and the latency
// histogram snapshot (SubscriberStats). Not API: it may change in any release.
//
// Installed as shmbus/detail/core/; in the source tree these includes find the project's core/.
// Either way they resolve without adding a directory named `core` to the user's include path.
#pragma once

#include "core/latency_histogram.hpp"
#include "core/ring_reader.hpp"
