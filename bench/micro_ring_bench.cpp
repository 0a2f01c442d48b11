// In-process microbenchmarks of the hot path, on a heap ring (core) and on a real channel (ipc).
// Cross-process figures come from `shmbus bench`; these isolate the instruction cost.
#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include <unistd.h>

#include "core/ring.hpp"
#include "core/ring_reader.hpp"
#include "shmbus/shmbus.hpp"

namespace {

struct HeapRing {
  explicit HeapRing(std::uint64_t capacity) {
    const std::size_t size = shmbus::core::ring_segment_size(capacity);
    memory.reset(static_cast<std::byte*>(std::aligned_alloc(4096, size)));
    std::memset(memory.get(), 0, size);
    shmbus::core::RingParams p;
    p.capacity = capacity;
    p.max_message = static_cast<std::uint32_t>(capacity / 8);
    p.incarnation = 42;
    p.name = "bench";
    shmbus::core::format_ring(memory.get(), p);
    ring = shmbus::core::RingRef::attach(memory.get());
  }
  struct Free {
    void operator()(std::byte* p) const { std::free(p); }
  };
  std::unique_ptr<std::byte, Free> memory;
  shmbus::core::RingRef ring;
};

// claim + header + payload copy + commit, no reader (non-gating), ring laps freely.
void BM_CoreClaimCommit(benchmark::State& state) {
  HeapRing h(1 << 22);
  shmbus::core::RingWriter w(h.ring, 1);
  const auto size = static_cast<std::uint32_t>(state.range(0));
  std::byte payload[4096] = {};
  for (auto _ : state) {
    shmbus::core::ClaimTicket t;
    if (w.try_claim(size, UINT64_MAX, t) != shmbus::core::ClaimStatus::ok) std::abort();
    w.write_header(t, 0);
    std::memcpy(t.payload, payload, size);
    benchmark::DoNotOptimize(w.commit(t));
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * size);
}
BENCHMARK(BM_CoreClaimCommit)->Arg(8)->Arg(64)->Arg(1024);

// Publish one, poll one, in place (gating reader) or copied (non-gating reader).
void BM_CorePublishPoll(benchmark::State& state) {
  HeapRing h(1 << 22);
  shmbus::core::RingWriter w(h.ring, 1);
  shmbus::core::RingReader r(h.ring, 0, 1);
  const bool copy = state.range(1) != 0;
  auto buffer = std::make_unique<std::byte[]>(1 << 20);
  const auto size = static_cast<std::uint32_t>(state.range(0));
  std::byte payload[4096] = {};
  std::uint64_t sum = 0;
  for (auto _ : state) {
    shmbus::core::ClaimTicket t;
    if (w.try_claim(size, r.position(), t) != shmbus::core::ClaimStatus::ok) std::abort();
    w.write_header(t, 0);
    std::memcpy(t.payload, payload, size);
    (void)w.commit(t);
    std::size_t n = 0;
    auto on = [&](const shmbus::core::RecordView& v) { sum += v.sequence; };
    if (copy) {
      r.poll_copy(on, 1, buffer.get(), 1 << 20, n);
    } else {
      r.poll_inplace(on, 1, n);
    }
  }
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CorePublishPoll)->ArgsProduct({{8, 64, 1024}, {0, 1}})->ArgNames({"size", "copy"});

// The same through the public API on a real channel (adds the gate epoch check and clock read).
void BM_ChannelPublishPoll(benchmark::State& state) {
  const std::string name = fmt::format("bench.micro.{}", ::getpid());
  shmbus::ChannelOptions co;
  co.capacity = 1 << 22;
  auto pub = shmbus::Publisher::open(name, co);
  shmbus::SubscriberOptions so;
  so.policy = state.range(1) != 0 ? shmbus::Policy::drop : shmbus::Policy::block;
  auto sub = shmbus::Subscriber::open(name, so);
  if (!pub || !sub) {
    state.SkipWithError("cannot open the channel");
    return;
  }
  const auto size = static_cast<std::uint32_t>(state.range(0));
  std::uint64_t sum = 0;
  for (auto _ : state) {
    shmbus::Claim c;
    if (pub->try_claim(size, c) != shmbus::PublishStatus::ok) std::abort();
    std::memset(c.data(), 1, size);
    (void)pub->commit(c);
    sub->poll([&](const shmbus::Message& m) { sum += m.sequence; }, 1);
  }
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(state.iterations());
  (void)shmbus::remove_channel(name);
}
BENCHMARK(BM_ChannelPublishPoll)->ArgsProduct({{64, 1024}, {0, 1}})->ArgNames({"size", "drop"});

}  // namespace

BENCHMARK_MAIN();
