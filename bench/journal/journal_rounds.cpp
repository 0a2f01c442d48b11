#include "bench/journal/journal_rounds.hpp"

#include <time.h>
#include <unistd.h>

#include <filesystem>
#include <stdexcept>
#include <system_error>
#include <thread>

#include <fmt/format.h>

namespace shmbus::bench {

std::uint64_t monotonic_now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::uint64_t(ts.tv_sec) * 1'000'000'000u + std::uint64_t(ts.tv_nsec);
}

void wait_ready(const RoundControl& control, std::uint32_t value) {
  // acquire: pairs with the release store of the side that became ready.
  while (control.ready.load(std::memory_order_acquire) < value) std::this_thread::yield();
}

RoundScratch::RoundScratch(const char* what, int round, const std::string& parent)
    : channel(fmt::format("bench.journal.{}.{}.{}", what, ::getpid(), round)),
      dir(fmt::format("{}/{}", parent, channel)) {}

RoundScratch::~RoundScratch() {
  (void)remove_channel(channel);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

Publisher create_channel(const std::string& name, std::uint64_t capacity,
                         std::uint32_t max_message) {
  ChannelOptions co;
  co.capacity = capacity;
  co.max_message = max_message;
  auto p = Publisher::open(name, co);
  if (!p) throw std::runtime_error(p.error().message);
  return std::move(*p);
}

Journaler open_journaler(const std::string& channel, const std::string& dir, bool direct) {
  JournalerOptions jo;
  jo.channel = channel;
  jo.writer.dir = dir;
  jo.writer.direct = direct;
  jo.writer.fsync = journal::FsyncPolicy::never;
  jo.writer.segment_bytes = 1ull << 30;
  auto j = Journaler::open(jo);
  if (!j) throw std::runtime_error(fmt::format("journaler: {}", j.error().message));
  return std::move(*j);
}

}  // namespace shmbus::bench
