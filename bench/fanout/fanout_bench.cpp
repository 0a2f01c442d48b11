#include "bench/fanout/fanout_bench.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <new>
#include <span>
#include <stdexcept>

#include <fmt/format.h>

#include "bench/fanout/fanout_channel.hpp"
#include "bench/fanout/fanout_roles.hpp"
#include "bench/harness/process.hpp"
#include "bench/harness/shared_mapping.hpp"
#include "bench/harness/stats.hpp"
#include "bench/harness/transport.hpp"
#include "core/latency_histogram.hpp"
#include "shmbus/shmbus.hpp"

namespace shmbus::bench {

namespace {

constexpr std::size_t kMaxMessageBytes = std::size_t{1} << 20;

// One round of one configuration.
struct RoundFigures {
  double published = 0;
  double publisher_msgs_per_s = 0;
  double delivered_min_msgs_per_s = 0;
  double delivered_median_msgs_per_s = 0;
  double lost = 0;
  double lost_fraction = 0;
  LatencyRound latency;  // every subscriber's deliveries together
};

// Middle value; mean of the two middle values for an even count.
double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return (values[(n - 1) / 2] + values[n / 2]) / 2;
}

// Subscribers are threads spread over at most kMaxSubscriberProcesses processes, not one process
// each: what is measured is the library's fan-out (every thread has its own Subscriber, slot and
// position, and the publisher serves them all alike), while 256 forks, each mapping the channel
// and faulting its pages in, would mostly measure process creation and make the rounds slow to
// set up. More than one process keeps the wake-ups crossing address spaces, as on a real host.
std::size_t subscriber_processes(std::size_t subscribers) {
  return std::min(subscribers, kMaxSubscriberProcesses);
}

// The round's channel, created before fork with the fanout options and removed however the round
// ends.
class RoundChannel {
 public:
  RoundChannel(const FanoutPlan& plan) : name_(plan.channel) {
    auto created = Publisher::open(name_, fanout_channel_options(plan.subscribers, plan.size));
    if (!created) {
      throw std::runtime_error(fmt::format("create channel {}: {}", name_,
                                           created.error().message));
    }
  }
  ~RoundChannel() { (void)remove_channel(name_); }
  RoundChannel(const RoundChannel&) = delete;
  RoundChannel& operator=(const RoundChannel&) = delete;

 private:
  std::string name_;
};

LatencyRound latency_of(std::span<const SubscriberTally> tallies) {
  LatencyRound round;
  core::LatencySnapshot& all = round.histogram;
  for (const SubscriberTally& t : tallies) merge(all, core::take_snapshot(t.latency));
  round.stats = LatencyStats{core::latency_percentile(all, 0.50),
                             core::latency_percentile(all, 0.90),
                             core::latency_percentile(all, 0.99),
                             core::latency_percentile(all, 0.999), all.max_ns};
  return round;
}

// What the children left in shared memory, checked and turned into figures.
RoundFigures figures_of(const FanoutPlan& plan, const FanoutShared& shared,
                        std::span<const SubscriberTally> tallies) {
  RoundFigures f;
  f.published = double(shared.published);
  f.publisher_msgs_per_s =
      double(shared.published) / (double(std::max<std::int64_t>(shared.end_ns - shared.start_ns,
                                                                1)) / 1e9);
  std::vector<double> delivered;
  std::uint64_t lost = 0;
  for (std::size_t i = 0; i < tallies.size(); ++i) {
    const SubscriberTally& t = tallies[i];
    const bool complete = plan.policy == Policy::block
                              ? t.received == shared.published && t.lost == 0
                              : t.received + t.lost == shared.published && t.received > 0;
    if (!complete) {
      throw std::runtime_error(fmt::format(
          "subscriber {} received {} and lost {} of the {} messages published", i, t.received,
          t.lost, shared.published));
    }
    const double span_s =
        double(std::max<std::int64_t>(t.last_delivery_ns - shared.start_ns, 1)) / 1e9;
    delivered.push_back(double(t.received) / span_s);
    lost += t.lost;
  }
  f.delivered_min_msgs_per_s = *std::min_element(delivered.begin(), delivered.end());
  f.delivered_median_msgs_per_s = median(std::move(delivered));
  f.lost = double(lost);
  f.lost_fraction = double(lost) / (double(shared.published) * double(tallies.size()));
  f.latency = latency_of(tallies);
  return f;
}

// Forks the subscriber processes, then the publisher, and waits for all of them. Returns an empty
// string or what went wrong.
std::string run_children(const FanoutPlan& plan, const CpuPlan& cpus, double timeout_s,
                         FanoutShared& shared, std::span<SubscriberTally> tallies) {
  const std::size_t processes = subscriber_processes(plan.subscribers);
  std::vector<Child> children;
  children.reserve(processes + 1);
  std::vector<WatchedChild> watched;
  try {
    for (std::size_t p = 0; p < processes; ++p) {
      const std::size_t first = p * plan.subscribers / processes;
      const std::size_t end = (p + 1) * plan.subscribers / processes;
      const std::span<SubscriberTally> mine = tallies.subspan(first, end - first);
      children.push_back(spawn_child(fmt::format("subscribers {}..{}", first, end - 1),
                                     cpus.responder_cpu, cpus.shared_cpu,
                                     shared.subscriber_errors[p], [&plan, &shared, mine, first] {
                                       run_fanout_subscribers(plan, shared, mine, first);
                                     }));
      watched.push_back({&children.back(), &shared.subscriber_errors[p]});
    }
    children.push_back(spawn_child("publisher", cpus.initiator_cpu, cpus.shared_cpu,
                                   shared.publisher_error,
                                   [&plan, &shared] { run_fanout_publisher(plan, shared); }));
    watched.push_back({&children.back(), &shared.publisher_error});
  } catch (const std::exception& e) {
    for (Child& c : children) kill_child(c);
    return fmt::format("starting the processes: {}", e.what());
  }
  return wait_for_children(watched, plan.duration_s + timeout_s);
}

RoundFigures run_round(const FanoutPlan& plan, const CpuPlan& cpus, double timeout_s) {
  SharedMapping mapping(sizeof(FanoutShared) + plan.subscribers * sizeof(SubscriberTally));
  static_assert(sizeof(FanoutShared) % alignof(SubscriberTally) == 0);
  FanoutShared& shared = *new (mapping.data()) FanoutShared{};
  auto* first_tally = reinterpret_cast<SubscriberTally*>(static_cast<char*>(mapping.data()) +
                                                         sizeof(FanoutShared));
  for (std::size_t i = 0; i < plan.subscribers; ++i) new (first_tally + i) SubscriberTally{};
  const std::span<SubscriberTally> tallies(first_tally, plan.subscribers);

  const RoundChannel channel(plan);
  const std::string failure = run_children(plan, cpus, timeout_s, shared, tallies);
  if (!failure.empty()) throw std::runtime_error(failure);
  return figures_of(plan, shared, tallies);
}

FanoutResult median_result(const FanoutPlan& plan, const std::vector<RoundFigures>& rounds) {
  auto median_of = [&](double RoundFigures::*field) {
    std::vector<double> values;
    for (const RoundFigures& r : rounds) values.push_back(r.*field);
    return median(std::move(values));
  };
  std::vector<LatencyRound> latencies;
  for (const RoundFigures& r : rounds) latencies.push_back(r.latency);
  LatencySummary latency = summarize(latencies);
  auto spread_of_field = [&](const char* figure, double RoundFigures::*field) {
    std::vector<double> values;
    for (const RoundFigures& r : rounds) values.push_back(r.*field);
    return spread_of(figure, values);
  };
  FanoutResult result;
  result.policy = to_string(plan.policy);
  result.subscribers = plan.subscribers;
  result.published = std::uint64_t(std::llround(median_of(&RoundFigures::published)));
  result.publisher_msgs_per_s = median_of(&RoundFigures::publisher_msgs_per_s);
  result.delivered_min_msgs_per_s = median_of(&RoundFigures::delivered_min_msgs_per_s);
  result.delivered_median_msgs_per_s = median_of(&RoundFigures::delivered_median_msgs_per_s);
  result.lost = std::uint64_t(std::llround(median_of(&RoundFigures::lost)));
  result.lost_fraction = median_of(&RoundFigures::lost_fraction);
  result.latency = latency.median;
  result.latency_detail = std::move(latency.detail);
  result.spread = {
      spread_of_field("publisher_msgs_per_s", &RoundFigures::publisher_msgs_per_s),
      spread_of_field("delivered_min_msgs_per_s", &RoundFigures::delivered_min_msgs_per_s),
      spread_of_field("delivered_median_msgs_per_s", &RoundFigures::delivered_median_msgs_per_s)};
  result.spread.insert(result.spread.end(), result.latency_detail.spread.begin(),
                       result.latency_detail.spread.end());
  return result;
}

// Each publisher rate over the same policy's one-subscriber rate.
void add_ratios(std::vector<FanoutResult>& results) {
  for (FanoutResult& r : results) {
    for (const FanoutResult& one : results) {
      if (one.policy == r.policy && one.subscribers == 1 && one.publisher_msgs_per_s > 0) {
        r.ratio_to_one_subscriber = r.publisher_msgs_per_s / one.publisher_msgs_per_s;
      }
    }
  }
}

// The subscriber counts to run: sorted, without repeats, 1 always among them.
std::vector<std::size_t> subscriber_counts(std::vector<std::size_t> counts) {
  counts.push_back(1);
  std::sort(counts.begin(), counts.end());
  counts.erase(std::unique(counts.begin(), counts.end()), counts.end());
  return counts;
}

}  // namespace

std::string validate(const FanoutConfig& config) {
  if (config.size < kSeqBytes || config.size > kMaxMessageBytes) {
    return fmt::format("message size {} is out of range: {} to {} bytes", config.size, kSeqBytes,
                       kMaxMessageBytes);
  }
  if (config.rounds < 1) return "rounds must be at least 1";
  if (!(config.duration_s > 0) || !std::isfinite(config.duration_s)) {
    return "duration must be a positive number of seconds";
  }
  if (!(config.timeout_s > 0)) return "timeout must be a positive number of seconds";
  if (config.policies.empty()) return "no policy to run";
  for (Policy p : config.policies) {
    if (p != Policy::block && p != Policy::drop) {
      return fmt::format("policy {} is not measured by the fanout bench (block or drop)",
                         to_string(p));
    }
  }
  for (std::size_t n : config.subscribers) {
    if (std::string e = check_fanout_subscribers(n); !e.empty()) return e;
  }
  return {};
}

tl::expected<FanoutReport, std::string> run_fanout(
    const FanoutConfig& config, const std::function<void(const std::string&)>& progress) {
  if (std::string e = validate(config); !e.empty()) return tl::unexpected(e);
  const CpuPlan cpus = plan_cpus(config.publisher_cpu, config.subscriber_cpu);

  std::vector<FanoutPlan> plans;
  for (Policy policy : config.policies) {
    for (std::size_t n : subscriber_counts(config.subscribers)) {
      FanoutPlan plan;
      plan.policy = policy;
      plan.subscribers = n;
      plan.size = config.size;
      plan.duration_s = config.duration_s;
      plan.wait_spin_ns = config.wait_spin_ns;
      plans.push_back(std::move(plan));
    }
  }

  std::vector<std::vector<RoundFigures>> rounds(plans.size());
  for (int round = 1; round <= config.rounds; ++round) {
    for (std::size_t i = 0; i < plans.size(); ++i) {
      FanoutPlan& plan = plans[i];
      const std::string what = fmt::format("fanout {}, {} subscriber(s)", to_string(plan.policy),
                                           plan.subscribers);
      if (progress) progress(fmt::format("{}, round {}/{}", what, round, config.rounds));
      plan.channel = fmt::format("bench.fanout.{}.{}.{}.{}", ::getpid(), to_string(plan.policy),
                                 plan.subscribers, round);
      try {
        rounds[i].push_back(run_round(plan, cpus, config.timeout_s));
      } catch (const std::exception& e) {
        return tl::unexpected(
            fmt::format("{}, round {}/{}: {}", what, round, config.rounds, e.what()));
      }
    }
  }

  FanoutReport report;
  report.size = config.size;
  report.duration_s = config.duration_s;
  report.rounds = config.rounds;
  report.publisher_cpu = cpus.initiator_cpu;
  report.subscriber_cpu = cpus.responder_cpu;
  report.wait_spin_ns = config.wait_spin_ns;
  report.max_subscriber_processes = kMaxSubscriberProcesses;
  for (std::size_t i = 0; i < plans.size(); ++i) {
    report.results.push_back(median_result(plans[i], rounds[i]));
  }
  add_ratios(report.results);
  return report;
}

}  // namespace shmbus::bench
