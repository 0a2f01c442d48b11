#include "bench/journal/journal_bench.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <new>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "bench/harness/process.hpp"
#include "bench/harness/shared_mapping.hpp"
#include "bench/harness/stats.hpp"
#include "bench/journal/journal_rounds.hpp"
#include "bench/journal/publisher_cost.hpp"
#include "journal/format.hpp"
#include "shmbus/journaler.hpp"
#include "shmbus/shmbus.hpp"

namespace shmbus::bench {

namespace {

double p99_ratio(const LatencyStats& with, const LatencyStats& without) {
  return without.p99_ns > 0 ? double(with.p99_ns) / double(without.p99_ns) : 0;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

std::string errno_text(const std::string& what) {
  return fmt::format("{}: {}", what, std::strerror(errno));
}

// Writes `bytes` sequentially with O_DIRECT in 1 MiB writes and syncs: the disk's plain bandwidth.
double direct_write_mb_per_s(const std::string& dir, std::uint64_t bytes) {
  const std::string path = fmt::format("{}/shmbus-bench-direct.{}", dir, ::getpid());
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_DIRECT | O_CLOEXEC, 0600);
  if (fd < 0) throw std::runtime_error(errno_text(fmt::format("open {} with O_DIRECT", path)));
  constexpr std::size_t kChunk = 1 << 20;
  void* buffer = nullptr;
  if (posix_memalign(&buffer, 4096, kChunk) != 0) {
    ::close(fd);
    throw std::bad_alloc();
  }
  std::memset(buffer, 0x5a, kChunk);
  const std::uint64_t start = monotonic_now_ns();
  std::uint64_t written = 0;
  std::string failure;
  while (written < bytes) {
    const ssize_t n = ::pwrite(fd, buffer, kChunk, static_cast<off_t>(written));
    if (n <= 0) {
      failure = errno_text(fmt::format("write {}", path));
      break;
    }
    written += static_cast<std::uint64_t>(n);
  }
  if (failure.empty() && ::fdatasync(fd) != 0) {
    failure = errno_text(fmt::format("fdatasync {}", path));
  }
  const std::uint64_t elapsed = monotonic_now_ns() - start;
  ::close(fd);
  ::unlink(path.c_str());
  std::free(buffer);
  if (!failure.empty()) throw std::runtime_error(failure);
  return double(written) / 1e6 / (double(elapsed) / 1e9);
}

// Publishes `count` messages of `size` bytes as fast as the channel takes them, in claim batches.
void publish_flat_out(Publisher& pub, std::uint64_t count, std::size_t size) {
  constexpr std::size_t kBatch = 32;
  const std::size_t per_claim = std::max<std::size_t>(
      1, std::min(kBatch, std::size_t(core::frame_size(pub.info().max_message) /
                                      core::frame_size(size))));
  std::vector<std::uint32_t> sizes(per_claim, static_cast<std::uint32_t>(size));
  Claim claims[kBatch];
  std::uint64_t seq = 1;
  while (seq <= count) {
    const std::size_t n = std::size_t(std::min<std::uint64_t>(per_claim, count - seq + 1));
    PublishStatus st;
    while ((st = pub.try_claim_batch({sizes.data(), n}, {claims, n})) ==
           PublishStatus::back_pressured) {
    }
    if (st != PublishStatus::ok) throw std::runtime_error(fmt::format("claim: {}", to_string(st)));
    for (std::size_t i = 0; i < n; ++i, ++seq) {
      std::memset(claims[i].data(), 0x5a, size);
      std::memcpy(claims[i].data(), &seq, std::min<std::size_t>(8, size));
      if (pub.commit(claims[i]) != PublishStatus::ok) throw std::runtime_error("commit failed");
    }
  }
}

JournalThroughput throughput_round(const JournalBenchConfig& cfg, std::size_t size, int round,
                                   const CpuPlan& cpus) {
  const std::uint64_t count =
      std::max<std::uint64_t>(1000, cfg.bytes / journal::padded_record_size(size));
  const RoundScratch scratch("tput", round, cfg.dir);
  const std::string& channel = scratch.channel;
  const std::string& dir = scratch.dir;
  create_channel(channel, 16 << 20, 64 << 10);
  SharedMapping shared(sizeof(RoundControl));
  auto& control = *new (shared.data()) RoundControl{};
  std::string failure;
  try {
    Child journaler = spawn_child("journaler", cpus.responder_cpu, cpus.shared_cpu,
                                  control.first_error, [&] {
      auto j = open_journaler(channel, dir, cfg.direct);
      control.ready.store(1, std::memory_order_release);  // release: see RoundControl
      while (j.stats().written_sequence < count) {
        auto r = j.step(std::chrono::milliseconds(0));
        if (!r) throw std::runtime_error(fmt::format("journaler: {}", r.error().message));
      }
      control.done_ns = monotonic_now_ns();
      if (auto r = j.drain(); !r) {
        throw std::runtime_error(fmt::format("drain: {}", r.error().message));
      }
    });
    Child producer = spawn_child("producer", cpus.initiator_cpu, cpus.shared_cpu,
                                 control.second_error, [&] {
      auto pub = Publisher::open(channel);
      if (!pub) throw std::runtime_error(pub.error().message);
      wait_ready(control, 1);
      control.start_ns = monotonic_now_ns();
      publish_flat_out(*pub, count, size);
    });
    failure = wait_for_children(journaler, control.first_error, producer, control.second_error,
                                cfg.timeout_s);
  } catch (const std::exception& e) {
    failure = e.what();
  }
  if (!failure.empty()) throw std::runtime_error(fmt::format("{} B round: {}", size, failure));
  JournalThroughput t;
  t.size = size;
  t.messages = count;
  t.seconds = double(control.done_ns - control.start_ns) / 1e9;
  t.msgs_per_s = double(count) / t.seconds;
  t.mb_per_s = t.msgs_per_s * double(journal::padded_record_size(size)) / 1e6;
  t.payload_mb_per_s = t.msgs_per_s * double(size) / 1e6;
  return t;
}

LatencyRound latency_round(const JournalBenchConfig& cfg, bool with_journal, int round,
                           const CpuPlan& cpus) {
  const RoundScratch scratch(with_journal ? "lat-j" : "lat", round, cfg.dir);
  const std::string& channel = scratch.channel;
  const std::string& dir = scratch.dir;
  create_channel(channel, 4 << 20, 64 << 10);
  SharedMapping shared(sizeof(RoundControl));
  auto& control = *new (shared.data()) RoundControl{};
  const std::uint64_t count = cfg.latency_count;
  const std::size_t size = std::max<std::size_t>(8, cfg.latency_size);
  std::string failure;
  try {
    Child subscriber = spawn_child("subscriber", cpus.responder_cpu, cpus.shared_cpu,
                                   control.first_error, [&] {
      SubscriberOptions so;
      so.start = StartFrom::earliest;
      auto sub = Subscriber::open(channel, so);
      if (!sub) throw std::runtime_error(sub.error().message);
      std::vector<std::uint64_t> samples;
      samples.reserve(count);
      control.ready.store(1, std::memory_order_release);  // release: see RoundControl
      while (samples.size() < count) {
        sub->poll([&](const Message& m) {
          std::uint64_t sent;
          std::memcpy(&sent, m.payload.data(), 8);
          samples.push_back(monotonic_now_ns() - sent);
        });
      }
      control.latency = measure_latency(samples);
    });
    Child producer = spawn_child("producer", cpus.initiator_cpu, cpus.shared_cpu,
                                 control.second_error, [&] {
      auto pub = Publisher::open(channel);
      if (!pub) throw std::runtime_error(pub.error().message);
      std::atomic<bool> stop{false};
      std::optional<Journaler> journaler;
      std::thread journal_thread;
      std::string journal_error;
      if (with_journal) {
        journaler.emplace(open_journaler(channel, dir, cfg.direct));
        journal_thread = std::thread([&] {
          if (auto r = journaler->run(stop); !r) journal_error = r.error().message;
        });
      }
      wait_ready(control, 1);
      std::vector<std::byte> message(size, std::byte{0x5a});
      const std::uint64_t interval = std::uint64_t(1e9 / cfg.latency_rate);
      std::uint64_t next = monotonic_now_ns();
      for (std::uint64_t i = 0; i < count; ++i) {
        next += interval;
        const timespec at{time_t(next / 1'000'000'000u), long(next % 1'000'000'000u)};
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, nullptr) == EINTR) {
        }
        const std::uint64_t sent = monotonic_now_ns();
        std::memcpy(message.data(), &sent, 8);
        if (pub->publish(message, std::chrono::seconds(5)) != PublishStatus::ok) {
          throw std::runtime_error("publish failed");
        }
      }
      if (with_journal) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        while (pub->journaled_sequence() < count && std::chrono::steady_clock::now() < deadline) {
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        // relaxed: a request flag; the thread's join orders everything after it.
        stop.store(true, std::memory_order_relaxed);
        journal_thread.join();
        if (!journal_error.empty()) {
          throw std::runtime_error(fmt::format("journaler: {}", journal_error));
        }
        if (pub->journaled_sequence() < count) {
          throw std::runtime_error("the journaler did not keep up with the latency run");
        }
      }
    });
    failure = wait_for_children(subscriber, control.first_error, producer, control.second_error,
                                cfg.timeout_s);
  } catch (const std::exception& e) {
    failure = e.what();
  }
  if (!failure.empty()) {
    throw std::runtime_error(
        fmt::format("latency round ({} journal): {}", with_journal ? "with" : "without", failure));
  }
  return control.latency;
}

}  // namespace

JournalBenchResult run_journal_bench(const JournalBenchConfig& cfg,
                                     const std::function<void(const std::string&)>& progress) {
  JournalBenchResult result;
  JournalBenchReport& report = result.report;
  report.config = cfg;
  auto say = [&](const std::string& line) {
    if (progress) progress(line);
  };
  const CpuPlan cpus = plan_cpus(0, 1);
  report.initiator_cpu = cpus.initiator_cpu;
  report.responder_cpu = cpus.responder_cpu;
  std::vector<double> direct;
  std::vector<std::vector<JournalThroughput>> tput(cfg.sizes.size());
  std::vector<LatencyRound> without, with, publisher_without, publisher_with;
  try {
    for (int r = 1; r <= cfg.rounds; ++r) {
      say(fmt::format("journal round {}/{}: O_DIRECT sequential write", r, cfg.rounds));
      direct.push_back(direct_write_mb_per_s(cfg.dir, cfg.bytes));
      for (std::size_t i = 0; i < cfg.sizes.size(); ++i) {
        say(fmt::format("journal round {}/{}: journaler throughput, {} B", r, cfg.rounds,
                        cfg.sizes[i]));
        tput[i].push_back(throughput_round(cfg, cfg.sizes[i], r, cpus));
      }
      say(fmt::format("journal round {}/{}: publisher cost without a journaler", r, cfg.rounds));
      publisher_without.push_back(publisher_cost_round(cfg, false, r, cpus).claim_commit);
      say(fmt::format("journal round {}/{}: publisher cost with a journaler", r, cfg.rounds));
      const PublisherCostRound cost = publisher_cost_round(cfg, true, r, cpus);
      publisher_with.push_back(cost.claim_commit);
      report.publisher_clock = cost.clock;
      say(fmt::format("journal round {}/{}: latency without a journaler", r, cfg.rounds));
      without.push_back(latency_round(cfg, false, r, cpus));
      say(fmt::format("journal round {}/{}: latency with a journaler", r, cfg.rounds));
      with.push_back(latency_round(cfg, true, r, cpus));
    }
  } catch (const std::exception& e) {
    result.error = e.what();
    return result;
  }
  report.direct_write_mb_per_s = median(direct);
  report.direct_write_spread = {spread_of("mb_per_s", direct)};
  for (auto& rounds : tput) {
    std::vector<double> rates;
    for (const JournalThroughput& t : rounds) rates.push_back(t.msgs_per_s);
    std::sort(rounds.begin(), rounds.end(),
              [](const auto& a, const auto& b) { return a.msgs_per_s < b.msgs_per_s; });
    JournalThroughput t = rounds[(rounds.size() - 1) / 2];  // the median round, whole
    t.of_direct = report.direct_write_mb_per_s > 0 ? t.mb_per_s / report.direct_write_mb_per_s : 0;
    t.spread = {spread_of("msgs_per_s", rates)};
    report.throughput.push_back(t);
  }
  LatencySummary summary = summarize(publisher_without);
  report.publisher_without = summary.median;
  report.publisher_without_detail = std::move(summary.detail);
  summary = summarize(publisher_with);
  report.publisher_with = summary.median;
  report.publisher_with_detail = std::move(summary.detail);
  report.publisher_p99_ratio = p99_ratio(report.publisher_with, report.publisher_without);
  summary = summarize(without);
  report.latency_without = summary.median;
  report.latency_without_detail = std::move(summary.detail);
  summary = summarize(with);
  report.latency_with = summary.median;
  report.latency_with_detail = std::move(summary.detail);
  report.p99_ratio = p99_ratio(report.latency_with, report.latency_without);
  return result;
}

namespace {

nlohmann::ordered_json latency_json(const LatencyStats& s, const LatencyDetail& detail) {
  return {{"p50_ns", s.p50_ns},
          {"p90_ns", s.p90_ns},
          {"p99_ns", s.p99_ns},
          {"p999_ns", s.p999_ns},
          {"max_ns", s.max_ns},
          {"spread", to_json(detail.spread)},
          {"distribution", distribution_json(detail.distribution)}};
}

}  // namespace

nlohmann::json to_json(const JournalBenchReport& r) {
  nlohmann::ordered_json tput = nlohmann::ordered_json::array();
  for (const auto& t : r.throughput) {
    tput.push_back({{"size", t.size},
                    {"messages", t.messages},
                    {"seconds", t.seconds},
                    {"msgs_per_s", t.msgs_per_s},
                    {"mb_per_s", t.mb_per_s},
                    {"payload_mb_per_s", t.payload_mb_per_s},
                    {"of_direct_write", t.of_direct},
                    {"spread", to_json(t.spread)}});
  }
  nlohmann::ordered_json j = {
      {"bench", "journal"},
      {"dir", r.config.dir},
      {"rounds", r.config.rounds},
      {"direct_io", r.config.direct},
      {"initiator_cpu", r.initiator_cpu},
      {"responder_cpu", r.responder_cpu},
      {"direct_write",
       {{"mb_per_s", r.direct_write_mb_per_s}, {"spread", to_json(r.direct_write_spread)}}},
      {"throughput", tput},
      {"publisher",
       {{"what", "try_claim..commit per message, in the publishing process"},
        {"clock", r.publisher_clock},
        {"size", r.config.latency_size},
        {"count", r.config.latency_count},
        {"rate", r.config.latency_rate},
        {"without_journal", latency_json(r.publisher_without, r.publisher_without_detail)},
        {"with_journal", latency_json(r.publisher_with, r.publisher_with_detail)},
        {"p99_ratio", r.publisher_p99_ratio}}},
      {"latency",
       {{"what", "one-way, three processes on two cores: scheduling noise dominates"},
        {"size", r.config.latency_size},
        {"count", r.config.latency_count},
        {"rate", r.config.latency_rate},
        {"without_journal", latency_json(r.latency_without, r.latency_without_detail)},
        {"with_journal", latency_json(r.latency_with, r.latency_with_detail)},
        {"p99_ratio", r.p99_ratio}}}};
  return nlohmann::json::parse(j.dump());
}

std::string format_table(const JournalBenchReport& r) {
  std::string out = fmt::format(
      "journal bench in {} ({}), median of {} round(s)\n"
      "plain O_DIRECT sequential write: {:.0f} MB/s\n\n"
      "{:>8} {:>12} {:>12} {:>14} {:>10}\n",
      r.config.dir, r.config.direct ? "journaler with O_DIRECT" : "journaler buffered",
      r.config.rounds, r.direct_write_mb_per_s, "size", "msgs/s", "MB/s", "payload MB/s",
      "x direct");
  for (const auto& t : r.throughput) {
    out += fmt::format("{:>6} B {:>11.3f}M {:>12.1f} {:>14.1f} {:>9.2f}x\n", t.size,
                       t.msgs_per_s / 1e6, t.mb_per_s, t.payload_mb_per_s, t.of_direct);
  }
  auto percentiles = [&](const LatencyStats& without, const LatencyStats& with, double ratio) {
    out += fmt::format("{:>16} {:>9} {:>9} {:>9} {:>10} {:>10}\n", "", "p50 ns", "p90 ns",
                       "p99 ns", "p99.9 ns", "max ns");
    auto row = [&](const char* name, const LatencyStats& s) {
      out += fmt::format("{:>16} {:>9} {:>9} {:>9} {:>10} {:>10}\n", name, s.p50_ns, s.p90_ns,
                         s.p99_ns, s.p999_ns, s.max_ns);
    };
    row("without journal", without);
    row("with journal", with);
    out += fmt::format("p99 with / without: {:.2f}x\n", ratio);
  };
  out += fmt::format(
      "\npublisher cost: try_claim..commit per message ({}), {} B at {:.0f} msg/s, {} messages,\n"
      "subscriber polling (20 us naps, no futex), journaler on the subscriber's CPU:\n",
      r.publisher_clock, r.config.latency_size, r.config.latency_rate, r.config.latency_count);
  percentiles(r.publisher_without, r.publisher_with, r.publisher_p99_ratio);
  out += fmt::format(
      "\none-way latency (three processes on two cores: scheduling noise dominates), {} B at "
      "{:.0f} msg/s,\n{} messages:\n",
      r.config.latency_size, r.config.latency_rate, r.config.latency_count);
  percentiles(r.latency_without, r.latency_with, r.p99_ratio);
  return out;
}

}  // namespace shmbus::bench
