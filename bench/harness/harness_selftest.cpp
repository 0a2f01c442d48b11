// Checks the harness by hand: runs every baseline transport briefly and prints the tables and
// JSON, then makes sure a wrong echo, a lost message, a crashed side and a hung side each fail
// the run with a message instead of passing or hanging. Exit status 0 when all of that holds.
//
//   (from the repository root, one line)
//   g++ -std=c++20 -O2 -Wall -Wextra -Werror -I. bench/harness/*.cpp -o /tmp/selftest -lfmt
//       -lpthread -lrt
//   /tmp/selftest           # brief: 2,000 round trips, 0.2 s streams, 1 round
//   /tmp/selftest --full    # the full method of runner.hpp: 20,000 + 200,000 round trips, 2 s
//                           # streams, 3 rounds
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "bench/harness/baselines.hpp"
#include "bench/harness/raw_shm_pingpong.hpp"
#include "bench/harness/raw_shm_ring.hpp"
#include "bench/harness/runner.hpp"

namespace {

using namespace shmbus::bench;

enum class Fault { wrong_echo, responder_crash, responder_hang };

// raw-shm with one deliberate fault at sequence number 100.
class FaultyPingPong final : public PingPongTransport {
 public:
  explicit FaultyPingPong(Fault fault) : fault_(fault) {}
  std::string name() const override { return "faulty"; }
  void prepare(const BenchConfig& c) override { inner_.prepare(c); }
  void as_initiator() override {}
  void as_responder() override {}
  void send(std::uint64_t seq) override { inner_.send(seq); }
  std::uint64_t receive() override {
    std::uint64_t seq = inner_.receive();
    if (seq == 100 && fault_ == Fault::responder_crash) std::abort();
    if (seq == 100 && fault_ == Fault::responder_hang) {
      for (;;) pause();
    }
    return seq;
  }
  void send_back(std::uint64_t seq) override {
    inner_.send_back(seq == 100 && fault_ == Fault::wrong_echo ? seq + 7 : seq);
  }
  std::uint64_t receive_back() override { return inner_.receive_back(); }
  void cleanup() override { inner_.cleanup(); }

 private:
  Fault fault_;
  RawShmPingPong inner_;
};

// The raw-shm ring that never sends sequence number 1000.
class LossyRing final : public ThroughputTransport {
 public:
  std::string name() const override { return "lossy"; }
  void prepare(const BenchConfig& c) override { inner_.prepare(c); }
  void as_producer() override {}
  void as_consumer() override {}
  void send(std::uint64_t seq) override {
    if (seq != 1000) inner_.send(seq);
  }
  std::uint64_t receive() override { return inner_.receive(); }
  void cleanup() override { inner_.cleanup(); }

 private:
  RawShmRing inner_;
};

int failures = 0;

void expect_failure(std::string_view what, const std::string& error, std::string_view needle) {
  const bool ok = error.find(needle) != std::string::npos;
  std::cout << (ok ? "ok   " : "FAIL ") << what << ": " << error << '\n';
  if (!ok) ++failures;
}

std::string pingpong_error(std::unique_ptr<PingPongTransport> t, const BenchConfig& config) {
  std::vector<std::unique_ptr<PingPongTransport>> one;
  one.push_back(std::move(t));
  auto result = run_pingpong(one, config);
  return result ? "(the run passed)" : result.error();
}

std::string throughput_error(std::unique_ptr<ThroughputTransport> t, const BenchConfig& config) {
  std::vector<std::unique_ptr<ThroughputTransport>> one;
  one.push_back(std::move(t));
  auto result = run_throughput(one, config);
  return result ? "(the run passed)" : result.error();
}

}  // namespace

int main(int argc, char** argv) {
  const bool full = argc > 1 && std::string_view(argv[1]) == "--full";
  BenchConfig config;
  if (!full) {
    config.warmup = 500;
    config.count = 2000;
    config.duration_s = 0.2;
    config.rounds = 1;
  }
  auto progress = [](const std::string& line) { std::cerr << line << '\n'; };

  for (std::size_t size : {std::size_t{64}, std::size_t{1024}}) {
    config.size = size;
    auto pingpong = run_pingpong(baseline_pingpong_transports(), config, progress);
    if (!pingpong) {
      std::cout << "FAIL pingpong: " << pingpong.error() << '\n';
      return 1;
    }
    auto throughput = run_throughput(baseline_throughput_transports(), config, progress);
    if (!throughput) {
      std::cout << "FAIL throughput: " << throughput.error() << '\n';
      return 1;
    }
    std::cout << format_table(*pingpong) << '\n' << format_table(*throughput) << '\n';
    std::cout << to_json(*pingpong).dump() << '\n' << to_json(*throughput).dump() << "\n\n";
  }

  BenchConfig quick;
  quick.warmup = 0;
  quick.count = 1000;
  quick.duration_s = 0.1;
  quick.rounds = 1;
  quick.timeout_s = 1.0;
  expect_failure("wrong echo",
                 pingpong_error(std::make_unique<FaultyPingPong>(Fault::wrong_echo), quick),
                 "expected sequence number 100, got 107");
  expect_failure("responder crash",
                 pingpong_error(std::make_unique<FaultyPingPong>(Fault::responder_crash), quick),
                 "responder: killed by signal");
  expect_failure("responder hang",
                 pingpong_error(std::make_unique<FaultyPingPong>(Fault::responder_hang), quick),
                 "timed out");
  expect_failure("lost message", throughput_error(std::make_unique<LossyRing>(), quick),
                 "expected sequence number 1000, got 1001");
  BenchConfig tiny = quick;
  tiny.size = 4;
  expect_failure("message too small", throughput_error(std::make_unique<LossyRing>(), tiny),
                 "too small");

  std::cout << (failures == 0 ? "selftest passed\n" : "selftest FAILED\n");
  return failures == 0 ? 0 : 1;
}
