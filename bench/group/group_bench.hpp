// `shmbus bench group`: what a consumer group costs against a plain block subscriber, measured as
// users run them: a publisher process streaming `count` records into a fresh channel, and the
// consumers in processes of their own, in the same run with the same channel settings, record size
// and count. Four configurations:
//
//   subscriber            one block Subscriber (the reference of the ratios)
//   group-1               a group of one member that acks each record after checking it
//   group-1-ack-through   a group of one member that acks once per poll (ack_through)
//   group-2               a group of two member processes, each acking each record
//
// Each round creates a fresh channel, forks the consumers (pinned to one CPU) and the publisher
// (another), waits until every consumer has attached, publishes, and checks that every sequence
// was consumed exactly once across the consumers, with its content. Rounds are interleaved (round
// 1 of every configuration, then round 2...) and each figure is the median over the rounds. The
// ack cost is read off the medians: group-1 minus group-1-ack-through (what acking each record
// costs beyond acking a batch), and group-1 minus subscriber (what the group costs in all).
//
//   auto report = run_group_bench(GroupBenchConfig{.count = 200'000});
//   if (!report) { std::cerr << report.error() << '\n'; return 1; }
//   std::cout << format_table(*report);
//
// The caller must be single-threaded (it forks). Nothing is printed; `progress`, when given, is
// called with a short line before each round of each configuration.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include <tl/expected.hpp>

#include "bench/group/group_report.hpp"

namespace shmbus::bench {

struct GroupBenchConfig {
  std::size_t size = 64;  // bytes per record, >= 8 (the sequence is in the first 8)
  std::uint64_t count = 1'000'000;  // records per round
  int rounds = 3;
  std::uint64_t wait_spin_ns = 50'000;  // Subscriber::wait's and GroupConsumer::wait's default
  std::uint32_t window = 4096;          // GroupOptions::window's default
  int publisher_cpu = 0;
  int consumer_cpu = 1;
  double timeout_s = 120;  // a round that takes longer is killed and fails
};

// Empty if the config can be run, else what is wrong with it.
std::string validate(const GroupBenchConfig& config);

tl::expected<GroupBenchReport, std::string> run_group_bench(
    const GroupBenchConfig& config, const std::function<void(const std::string&)>& progress = {});

}  // namespace shmbus::bench
