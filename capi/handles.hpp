// What the C API's opaque handles (include/shmbus/shmbus.h) hold: each one C++ object, made by
// the handle's _open function with new and deleted by its _close.
#pragma once

#include "shmbus/journal_reader.hpp"
#include "shmbus/journaler.hpp"
#include "shmbus/shmbus.h"
#include "shmbus/shmbus.hpp"

struct shmbus_publisher {
  shmbus::Publisher publisher;
};

struct shmbus_subscriber {
  shmbus::Subscriber subscriber;
};

struct shmbus_journaler {
  shmbus::Journaler journaler;
};

struct shmbus_journal_reader {
  shmbus::journal::JournalReader reader;
};

namespace shmbus::capi {

// ChannelInfo as the C struct.
void copy_info(const ChannelInfo& info, shmbus_channel_info& out) noexcept;

}  // namespace shmbus::capi
