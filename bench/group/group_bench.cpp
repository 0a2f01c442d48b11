#include "bench/group/group_bench.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <new>
#include <span>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>

#include "bench/group/group_roles.hpp"
#include "bench/harness/process.hpp"
#include "bench/harness/shared_mapping.hpp"
#include "bench/harness/transport.hpp"
#include "core/latency_histogram.hpp"
#include "shmbus/shmbus.hpp"

namespace shmbus::bench {

namespace {

constexpr std::size_t kMaxGroupRecordBytes = std::size_t{1} << 16;
constexpr std::uint64_t kMaxGroupBenchCount = 100'000'000;  // a byte of marks each

// One configuration as the report names it.
struct GroupConfiguration {
  const char* consumer;
  GroupBenchMode mode;
  std::size_t members;
  const char* ack;
};
constexpr GroupConfiguration kGroupConfigurations[] = {
    {"subscriber", GroupBenchMode::subscriber, 1, "none"},
    {"group-1", GroupBenchMode::ack_each, 1, "each"},
    {"group-1-ack-through", GroupBenchMode::ack_per_batch, 1, "through"},
    {"group-2", GroupBenchMode::ack_each, 2, "each"},
};

// One round of one configuration.
struct GroupRound {
  double records_per_s = 0;
  std::vector<std::uint64_t> consumed_per_member;
  std::uint64_t redelivered = 0;
  LatencyRound latency;
};

double group_median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return (values[(n - 1) / 2] + values[n / 2]) / 2;
}

// The round's channel: created before fork with the defaults a user gets (grown only if the
// record size needs it), removed however the round ends, with its group.
class GroupRoundChannel {
 public:
  GroupRoundChannel(const GroupPlan& plan) : name_(plan.channel) {
    ChannelOptions options;
    options.max_message = std::max(options.max_message, static_cast<std::uint32_t>(plan.size));
    auto created = Publisher::open(name_, options);
    if (!created) {
      throw std::runtime_error(
          fmt::format("create channel {}: {}", name_, created.error().message));
    }
  }
  ~GroupRoundChannel() { (void)remove_channel(name_); }
  GroupRoundChannel(const GroupRoundChannel&) = delete;
  GroupRoundChannel& operator=(const GroupRoundChannel&) = delete;

 private:
  std::string name_;
};

// What the children left in shared memory, checked and turned into figures.
GroupRound group_round_figures(const GroupPlan& plan, const GroupBenchShared& shared,
                               std::span<const GroupConsumerTally> tallies,
                               std::span<const std::atomic<std::uint8_t>> marks) {
  if (shared.published != plan.count) {
    throw std::runtime_error(fmt::format("the publisher published {} of {} records",
                                         shared.published, plan.count));
  }
  GroupRound round;
  std::uint64_t consumed = 0;
  std::int64_t last_done = shared.start_ns;
  core::LatencySnapshot all{};
  for (std::size_t i = 0; i < tallies.size(); ++i) {
    const GroupConsumerTally& t = tallies[i];
    if (t.fenced != 0) {
      throw std::runtime_error(fmt::format("consumer {} had {} acks refused", i, t.fenced));
    }
    consumed += t.consumed;
    round.redelivered += t.redelivered;
    round.consumed_per_member.push_back(t.consumed);
    last_done = std::max(last_done, t.last_done_ns);
    merge(all, core::take_snapshot(t.latency));
  }
  if (consumed != plan.count) {
    throw std::runtime_error(fmt::format("the consumers consumed {} records together, {} were "
                                         "published",
                                         consumed, plan.count));
  }
  for (std::size_t i = 0; i < marks.size(); ++i) {
    // relaxed: every child has been reaped; wait() ordered their stores before this load.
    if (marks[i].load(std::memory_order_relaxed) != 1) {
      throw std::runtime_error(fmt::format("record {} was never consumed", i + 1));
    }
  }
  const double span_s = double(std::max<std::int64_t>(last_done - shared.start_ns, 1)) / 1e9;
  round.records_per_s = double(plan.count) / span_s;
  round.latency.histogram = all;
  round.latency.stats =
      LatencyStats{core::latency_percentile(all, 0.50), core::latency_percentile(all, 0.90),
                   core::latency_percentile(all, 0.99), core::latency_percentile(all, 0.999),
                   all.max_ns};
  return round;
}

// Forks the consumers, then the publisher, and waits for all of them. Empty, or what went wrong.
std::string run_group_children(const GroupPlan& plan, const CpuPlan& cpus, double timeout_s,
                               GroupBenchShared& shared, std::span<GroupConsumerTally> tallies,
                               std::atomic<std::uint8_t>* marks) {
  std::vector<Child> children;
  children.reserve(plan.consumers + 1);
  std::vector<WatchedChild> watched;
  try {
    for (std::size_t i = 0; i < plan.consumers; ++i) {
      GroupConsumerTally& tally = tallies[i];
      children.push_back(spawn_child(fmt::format("consumer {}", i), cpus.responder_cpu,
                                     cpus.shared_cpu, shared.consumer_errors[i],
                                     [&plan, &shared, &tally, marks] {
                                       run_group_consumer(plan, shared, tally, marks);
                                     }));
      watched.push_back({&children.back(), &shared.consumer_errors[i]});
    }
    children.push_back(spawn_child("publisher", cpus.initiator_cpu, cpus.shared_cpu,
                                   shared.publisher_error,
                                   [&plan, &shared] { run_group_publisher(plan, shared); }));
    watched.push_back({&children.back(), &shared.publisher_error});
  } catch (const std::exception& e) {
    for (Child& c : children) kill_child(c);
    return fmt::format("starting the processes: {}", e.what());
  }
  return wait_for_children(watched, timeout_s);
}

GroupRound run_group_round(const GroupPlan& plan, const CpuPlan& cpus, double timeout_s) {
  const std::size_t tallies_at = sizeof(GroupBenchShared);
  const std::size_t marks_at = tallies_at + plan.consumers * sizeof(GroupConsumerTally);
  static_assert(sizeof(GroupBenchShared) % alignof(GroupConsumerTally) == 0);
  static_assert(sizeof(GroupConsumerTally) % alignof(std::atomic<std::uint8_t>) == 0);
  SharedMapping mapping(marks_at + plan.count * sizeof(std::atomic<std::uint8_t>));
  char* base = static_cast<char*>(mapping.data());
  GroupBenchShared& shared = *new (base) GroupBenchShared{};
  auto* first_tally = reinterpret_cast<GroupConsumerTally*>(base + tallies_at);
  for (std::size_t i = 0; i < plan.consumers; ++i) new (first_tally + i) GroupConsumerTally{};
  auto* marks = reinterpret_cast<std::atomic<std::uint8_t>*>(base + marks_at);
  for (std::uint64_t i = 0; i < plan.count; ++i) new (marks + i) std::atomic<std::uint8_t>{0};
  const std::span<GroupConsumerTally> tallies(first_tally, plan.consumers);

  const GroupRoundChannel channel(plan);
  const std::string failure = run_group_children(plan, cpus, timeout_s, shared, tallies, marks);
  if (!failure.empty()) throw std::runtime_error(failure);
  return group_round_figures(plan, shared, tallies, {marks, plan.count});
}

GroupBenchResult group_median_result(const GroupConfiguration& c, const GroupPlan& plan,
                                     const std::vector<GroupRound>& rounds) {
  std::vector<double> rates;
  std::vector<LatencyRound> latencies;
  for (const GroupRound& r : rounds) {
    rates.push_back(r.records_per_s);
    latencies.push_back(r.latency);
  }
  // The round with the median rate (the lower middle one for an even count) gives the counts, so
  // that they belong to one real round.
  std::vector<std::size_t> order(rounds.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return rounds[a].records_per_s < rounds[b].records_per_s;
  });
  const GroupRound& middle = rounds[order[(order.size() - 1) / 2]];
  LatencySummary latency = summarize(latencies);
  GroupBenchResult result;
  result.consumer = c.consumer;
  result.members = c.members;
  result.ack = c.ack;
  result.records = plan.count;
  result.records_per_s = group_median(rates);
  result.ns_per_record = result.records_per_s > 0 ? 1e9 / result.records_per_s : 0;
  result.consumed_per_member = middle.consumed_per_member;
  result.redelivered = middle.redelivered;
  result.latency = latency.median;
  result.latency_detail = std::move(latency.detail);
  result.spread = {spread_of("records_per_s", rates)};
  result.spread.insert(result.spread.end(), result.latency_detail.spread.begin(),
                       result.latency_detail.spread.end());
  return result;
}

// Ratios and differences to the subscriber, and the ack cost.
void add_group_comparisons(GroupBenchReport& report) {
  const auto find = [&](const char* consumer) -> const GroupBenchResult* {
    for (const GroupBenchResult& r : report.results) {
      if (r.consumer == consumer) return &r;
    }
    return nullptr;
  };
  const GroupBenchResult* sub = find("subscriber");
  if (sub == nullptr || sub->records_per_s <= 0) return;
  for (GroupBenchResult& r : report.results) {
    r.ratio_to_subscriber = r.records_per_s / sub->records_per_s;
    r.extra_ns_per_record = r.ns_per_record - sub->ns_per_record;
  }
  const GroupBenchResult* each = find("group-1");
  const GroupBenchResult* through = find("group-1-ack-through");
  if (each != nullptr && through != nullptr) {
    report.ack_each_minus_through_ns = each->ns_per_record - through->ns_per_record;
  }
  if (each != nullptr) report.group_minus_subscriber_ns = each->ns_per_record - sub->ns_per_record;
}

}  // namespace

std::string validate(const GroupBenchConfig& config) {
  if (config.size < kSeqBytes || config.size > kMaxGroupRecordBytes) {
    return fmt::format("record size {} is out of range: {} to {} bytes", config.size, kSeqBytes,
                       kMaxGroupRecordBytes);
  }
  if (config.count < 1 || config.count > kMaxGroupBenchCount) {
    return fmt::format("count {} is out of range: 1 to {}", config.count, kMaxGroupBenchCount);
  }
  if (config.rounds < 1) return "rounds must be at least 1";
  if (!(config.timeout_s > 0)) return "timeout must be a positive number of seconds";
  return {};
}

tl::expected<GroupBenchReport, std::string> run_group_bench(
    const GroupBenchConfig& config, const std::function<void(const std::string&)>& progress) {
  if (std::string e = validate(config); !e.empty()) return tl::unexpected(e);
  const CpuPlan cpus = plan_cpus(config.publisher_cpu, config.consumer_cpu);

  std::vector<GroupPlan> plans;
  for (const GroupConfiguration& c : kGroupConfigurations) {
    GroupPlan plan;
    plan.mode = c.mode;
    plan.consumers = c.members;
    plan.size = config.size;
    plan.count = config.count;
    plan.wait_spin_ns = config.wait_spin_ns;
    plan.window = config.window;
    plans.push_back(std::move(plan));
  }

  std::vector<std::vector<GroupRound>> rounds(plans.size());
  for (int round = 1; round <= config.rounds; ++round) {
    for (std::size_t i = 0; i < plans.size(); ++i) {
      GroupPlan& plan = plans[i];
      const std::string what = fmt::format("group bench {}", kGroupConfigurations[i].consumer);
      if (progress) progress(fmt::format("{}, round {}/{}", what, round, config.rounds));
      plan.channel = fmt::format("bench.group.{}.{}.{}", ::getpid(), i, round);
      try {
        rounds[i].push_back(run_group_round(plan, cpus, config.timeout_s));
      } catch (const std::exception& e) {
        return tl::unexpected(
            fmt::format("{}, round {}/{}: {}", what, round, config.rounds, e.what()));
      }
    }
  }

  GroupBenchReport report;
  report.size = config.size;
  report.count = config.count;
  report.rounds = config.rounds;
  report.publisher_cpu = cpus.initiator_cpu;
  report.consumer_cpu = cpus.responder_cpu;
  report.wait_spin_ns = config.wait_spin_ns;
  report.window = config.window;
  report.ack_timeout_ns = kGroupBenchAckTimeoutNs;
  for (std::size_t i = 0; i < plans.size(); ++i) {
    report.results.push_back(group_median_result(kGroupConfigurations[i], plans[i], rounds[i]));
  }
  add_group_comparisons(report);
  return report;
}

}  // namespace shmbus::bench
