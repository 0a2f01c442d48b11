// shmbus demo: a live channel in one command. The processes are demo_roles() (a publisher, a
// block and a drop subscriber), each forked from here; this file starts them in order, prints
// their stats every 200 ms from the shared board they report on, and judges them at the end. Then
// it measures the transport's own latency (demo_round_trip.hpp), apart from the scheduling noise
// of five sleeping processes on shared CPUs that the stats show.
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "shmbus/stats.hpp"
#include "tools/commands.hpp"
#include "tools/demo_payload.hpp"
#include "tools/demo_round_trip.hpp"
#include "tools/demo_roles.hpp"
#include "tools/observe_format.hpp"
#include "tools/option_bounds.hpp"
#include "tools/pacer.hpp"
#include "tools/signals.hpp"

namespace shmbus::tools {
namespace {

// A small ring, so that the drop subscriber's pauses let the publisher lap it.
constexpr std::uint64_t kDemoCapacity = 64 << 10;
constexpr std::uint32_t kDemoMaxMessage = 1024;
static_assert(kDemoMaxPayload <= kDemoMaxMessage);

constexpr std::int64_t kStatsIntervalNs = 200'000'000;
constexpr std::int64_t kReadyTimeoutNs = 5'000'000'000;
constexpr std::int64_t kKillGraceNs = 5'000'000'000;  // after a stop request, before SIGKILL

// The board, in an anonymous shared mapping that every forked process inherits.
class SharedBoard {
 public:
  SharedBoard() {
    void* p =
        mmap(nullptr, sizeof(DemoBoard), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p != MAP_FAILED) board_ = new (p) DemoBoard();
  }
  ~SharedBoard() {
    if (board_ == nullptr) return;
    board_->~DemoBoard();
    munmap(board_, sizeof(DemoBoard));
  }
  SharedBoard(const SharedBoard&) = delete;
  SharedBoard& operator=(const SharedBoard&) = delete;

  DemoBoard* get() const noexcept { return board_; }

 private:
  DemoBoard* board_ = nullptr;
};

// Removes the demo's channel however run_demo returns (forked processes leave with _exit and
// never get here).
struct ChannelRemover {
  std::string channel;
  ~ChannelRemover() { (void)remove_channel(channel); }
};

// The journaler's directory: a fresh one under /var/tmp, removed at the end.
struct JournalDir {
  std::string path;
  JournalDir() {
    std::string pattern = "/var/tmp/shmbus-demo-journal-XXXXXX";
    if (::mkdtemp(pattern.data()) != nullptr) path = pattern;
  }
  ~JournalDir() {
    std::error_code ec;
    if (!path.empty()) std::filesystem::remove_all(path, ec);
  }
};

struct Child {
  const DemoRole* role = nullptr;
  RoleReport* report = nullptr;
  pid_t pid = -1;
  bool running = false;
  int exit_code = -1;  // 128 + N if killed by signal N
};

class DemoRun {
 public:
  DemoRun(const DemoConfig& cfg, DemoBoard& board, std::FILE* out)
      : cfg_(cfg), board_(board), out_(out) {}

  // Starts every role of `kind`; false if one could not be forked.
  bool start(RoleKind kind) {
    for (Child& c : children_) {
      if (c.role->kind != kind) continue;
      std::fflush(nullptr);  // nothing buffered here is written again by the child
      c.pid = fork();
      if (c.pid < 0) {
        fmt::print(stderr, "shmbus demo: fork: {}\n", std::strerror(errno));
        return false;
      }
      if (c.pid == 0) run_child(c);
      c.running = true;
    }
    return true;
  }

  // Waits until every sink has attached; false if one failed or took too long.
  bool wait_sinks_ready() {
    const std::int64_t deadline = monotonic_now_ns() + kReadyTimeoutNs;
    for (;;) {
      reap();
      bool all_ready = true;
      for (const Child& c : children_) {
        if (c.role->kind != RoleKind::sink) continue;
        // relaxed: a progress flag; the sink's attachment happened in its own process.
        const RoleState st = c.report->state.load(std::memory_order_relaxed);
        if (st == RoleState::failed || !c.running) return false;
        all_ready = all_ready && st == RoleState::ready;
      }
      if (all_ready) return true;
      if (monotonic_now_ns() >= deadline || stop_requested()) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  // Prints stats every 200 ms until every child has exited. Asks them to stop (and in the end
  // kills them) on SIGINT/SIGTERM or when they take far longer than the rate says they should.
  void watch() {
    // Three times as long as the rate says, plus 30 s; capped at a year so nothing overflows.
    const double expected_ns = static_cast<double>(cfg_.messages) / cfg_.rate * 1e9;
    const std::int64_t deadline =
        start_ns_ + static_cast<std::int64_t>(std::min(3 * expected_ns + 30e9, 3.2e16));
    std::int64_t stop_asked_ns = 0;
    std::int64_t next_stats = start_ns_ + kStatsIntervalNs;
    while (reap() > 0) {
      const std::int64_t now = monotonic_now_ns();
      if (stop_asked_ns == 0 && (stop_requested() || now >= deadline)) {
        fmt::print(out_, "demo: {}; stopping\n", stop_requested() ? "interrupted" : "too slow");
        board_.stop.store(1, std::memory_order_relaxed);  // relaxed: a polled flag
        stop_asked_ns = now;
      }
      if (stop_asked_ns != 0 && now - stop_asked_ns > kKillGraceNs) {
        for (const Child& c : children_) {
          if (c.running) kill(c.pid, SIGKILL);
        }
      }
      if (now >= next_stats) {
        print_stats(now);
        next_stats += kStatsIntervalNs;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    print_stats(monotonic_now_ns());
    end_ns_ = monotonic_now_ns();
  }

  // Asks everything still running to stop and waits for it.
  void abort() {
    board_.stop.store(1, std::memory_order_relaxed);  // relaxed: a polled flag
    watch();
  }

  // Prints the summary table; true if every process passed.
  bool judge() {
    const DemoTotals totals{cfg_.messages, published()};
    const double seconds =
        static_cast<double>(std::max<std::int64_t>(end_ns_ - start_ns_, 1)) / 1e9;
    fmt::print(out_, "\npublished {} of {} messages in {:.2f} s ({} msg/s), channel {} ({})\n\n",
               totals.published, totals.expected, seconds,
               human_count(static_cast<double>(totals.published) / seconds), cfg_.channel,
               human_bytes(static_cast<double>(kDemoCapacity)));
    fmt::print(out_, "{:<10} {:<7} {:>10} {:>10} {:>10} {:>9} {:>14} {:>9}  {}\n", "process",
               "policy", "received", "lost", "recv+lost", "spilled", "checksum_fail", "in_order",
               "result");
    bool pass = true;
    for (const Child& c : children_) {
      std::string why = c.role->verdict(*c.report, totals);
      if (why.empty() && c.exit_code != 0) why = fmt::format("exit code {}", c.exit_code);
      pass = pass && why.empty();
      const RoleReport& r = *c.report;
      if (c.role->kind == RoleKind::sink) {
        fmt::print(out_, "{:<10} {:<7} {:>10} {:>10} {:>10} {:>9} {:>14} {:>9}  {}\n",
                   c.role->name, c.role->policy, r.count.load(), r.lost.load(),
                   r.count.load() + r.lost.load(), r.spilled.load(), r.bad_payloads.load(),
                   r.order_errors.load() == 0 ? "yes" : "no",
                   why.empty() ? "ok" : fmt::format("FAIL: {}", why));
      } else if (!why.empty()) {
        fmt::print(out_, "{:<10} FAIL: {}\n", c.role->name, why);
      }
    }
    pass = cross_check_stats(totals) && pass;
    for (const Child& c : children_) {
      if (c.role->name != "journaler") continue;
      fmt::print(out_,
                 "\njournal {}: {} records written and read back (every checksum and sequence "
                 "checked), durable (fdatasync'ed) through sequence {}\n",
                 cfg_.journal_dir, c.report->last_sequence.load(), c.report->durable.load());
    }
    return pass;
  }

  // The channel's counters in shared memory (what `shmbus stat` reads) must agree with what each
  // process counted itself: published messages, and every subscriber's received, lost, spilled.
  bool cross_check_stats(const DemoTotals& totals) {
    auto st = read_channel_stats(cfg_.channel);
    if (!st) {
      fmt::print(out_, "\nstat cross-check: FAIL: {}\n", st.error().message);
      return false;
    }
    std::vector<std::string> mismatches;
    if (st->published_messages != totals.published) {
      mismatches.push_back(fmt::format("published {} in stat, {} by the publisher",
                                       st->published_messages, totals.published));
    }
    std::size_t checked = 0;
    for (const Child& c : children_) {
      if (c.role->kind != RoleKind::sink || c.role->name == "journaler") continue;
      const RoleReport& r = *c.report;
      const auto it = std::find_if(st->subscribers.begin(), st->subscribers.end(),
                                   [&](const SubscriberStats& s) { return s.name == c.role->policy; });
      if (it == st->subscribers.end()) {
        mismatches.push_back(fmt::format("no subscriber named {} in stat", c.role->policy));
        continue;
      }
      ++checked;
      // relaxed: the children have exited; their last stores are final.
      const std::uint64_t received = r.count.load(std::memory_order_relaxed);
      const std::uint64_t lost = r.lost.load(std::memory_order_relaxed);        // relaxed: above
      const std::uint64_t spilled = r.spilled.load(std::memory_order_relaxed);  // relaxed: above
      if (it->received != received || it->lost != lost || it->spilled != spilled) {
        mismatches.push_back(fmt::format(
            "{}: stat says received {} lost {} spilled {}, the process counted {} {} {}",
            c.role->name, it->received, it->lost, it->spilled, received, lost, spilled));
      }
    }
    if (mismatches.empty()) {
      fmt::print(out_,
                 "\nstat cross-check: ok (the control segment's counters agree with the "
                 "processes': {} published, {} subscribers' received/lost/spilled)\n",
                 st->published_messages, checked);
      return true;
    }
    for (const std::string& m : mismatches) fmt::print(out_, "\nstat cross-check: FAIL: {}\n", m);
    return false;
  }

  void add(const DemoRole& role, RoleReport& report) { children_.push_back(Child{&role, &report}); }
  void mark_start() { start_ns_ = end_ns_ = monotonic_now_ns(); }

 private:
  [[noreturn]] void run_child(Child& c) {
    int code = 1;
    try {
      code = c.role->body(cfg_, board_, *c.report);
    } catch (const std::exception& e) {
      fmt::print(stderr, "shmbus demo: {}: {}\n", c.role->name, e.what());
    } catch (...) {
    }
    // relaxed: read by the parent after waitpid().
    c.report->state.store(code == 0 ? RoleState::done : RoleState::failed,
                          std::memory_order_relaxed);  // relaxed: a statistic
    std::fflush(nullptr);
    _exit(code);
  }

  // Collects exited children; returns how many still run. Marks the sources' end on the board.
  std::size_t reap() {
    std::size_t running = 0, sources_running = 0;
    for (Child& c : children_) {
      if (!c.running) continue;
      int status = 0;
      if (waitpid(c.pid, &status, WNOHANG) == c.pid) {
        c.running = false;
        c.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        continue;
      }
      ++running;
      if (c.role->kind == RoleKind::source) ++sources_running;
    }
    if (sources_running == 0 && sources_started()) {
      board_.sources_exited.store(1, std::memory_order_relaxed);  // relaxed: a polled flag
    }
    return running;
  }

  bool sources_started() const {
    for (const Child& c : children_) {
      if (c.role->kind == RoleKind::source && c.pid > 0) return true;
    }
    return false;
  }

  std::uint64_t published() const {
    std::uint64_t n = 0;
    for (const Child& c : children_) {
      // relaxed: statistics (see RoleReport).
      if (c.role->kind == RoleKind::source) n += c.report->count.load(std::memory_order_relaxed);
    }
    return n;
  }

  void print_stats(std::int64_t now) {
    const std::uint64_t pub = published();
    std::string line = fmt::format("{:6.1f} s  published {:>9}", (now - start_ns_) / 1e9, pub);
    for (const Child& c : children_) {
      if (c.role->kind != RoleKind::sink) continue;
      const RoleReport& r = *c.report;
      // relaxed: statistics (see RoleReport).
      const std::uint64_t last = r.last_sequence.load(std::memory_order_relaxed);
      fmt::format_to(std::back_inserter(line), " | {}: recv {:>9} lost {:>8} lag {:>6}",
                     c.role->name, r.count.load(std::memory_order_relaxed),  // relaxed: statistic
                     r.lost.load(std::memory_order_relaxed), pub > last ? pub - last : 0);  // relaxed: statistic
    }
    fmt::print(out_, "{}\n", line);
    show_stat_half_way(pub);
    std::fflush(out_);
  }

  // Once, half way through: the channel as `shmbus stat` shows it to an operator, read from its
  // shared memory like the tool does (rates over the last stats interval).
  void show_stat_half_way(std::uint64_t published_now) {
    auto now = read_channel_stats(cfg_.channel);
    if (!now) return;
    if (!stat_shown_ && published_now >= cfg_.messages / 2 && previous_stats_) {
      fmt::print(out_, "\n--- half way: shmbus stat {} ---\n{}\n{}---\n\n", cfg_.channel,
                 stat_text(*now, measure_rates(&*previous_stats_, *now), false),
                 demo_latency_caveat(children_.size(), usable_cpu_count()));
      stat_shown_ = true;
    }
    previous_stats_ = std::move(*now);
  }

  const DemoConfig& cfg_;
  DemoBoard& board_;
  std::FILE* out_;
  std::vector<Child> children_;
  std::int64_t start_ns_ = 0;
  std::int64_t end_ns_ = 0;
  std::optional<ChannelStats> previous_stats_;
  bool stat_shown_ = false;
};

// The transport's own latency, after the checks; false if the measurement failed (the harness
// checks every echoed sequence, so a failure is the bus's or the machine's, and is shown).
bool print_round_trip(std::uint64_t round_trips, std::FILE* out) {
  fmt::print(out, "\n");
  std::fflush(out);  // the harness forks: nothing buffered is written twice
  auto round_trip = measure_demo_round_trip(round_trips);
  if (!round_trip) {
    fmt::print(out, "round trip: FAIL: {}\n", round_trip.error());
    return false;
  }
  fmt::print(out, "{}", demo_round_trip_text(*round_trip));
  return true;
}

}  // namespace

int run_demo(const DemoOptions& o, std::FILE* out) {
  install_stop_handlers();
  const std::vector<DemoRole> roles = demo_roles();
  if (roles.size() > kMaxDemoRoles || o.rate <= 0) {
    fmt::print(stderr, "shmbus demo: needs a positive rate and at most {} processes\n",
               kMaxDemoRoles);
    return kExitFailure;
  }
  JournalDir journal_dir;
  if (journal_dir.path.empty()) {
    fmt::print(stderr, "shmbus demo: cannot create a journal directory in /var/tmp: {}\n",
               std::strerror(errno));
    return kExitFailure;
  }
  const DemoConfig cfg{fmt::format("demo.{}", getpid()), o.messages, o.rate, journal_dir.path};
  (void)remove_channel(cfg.channel);  // a leftover of an earlier process with our pid
  ChannelOptions channel;
  channel.capacity = kDemoCapacity;
  channel.max_message = kDemoMaxMessage;
  if (auto created = Publisher::open(cfg.channel, channel); !created) {
    fmt::print(stderr, "shmbus demo: {}\n", created.error().message);
    return kExitFailure;
  }
  ChannelRemover remover{cfg.channel};
  SharedBoard shared;
  if (shared.get() == nullptr) {
    fmt::print(stderr, "shmbus demo: mmap: {}\n", std::strerror(errno));
    return kExitFailure;
  }

  DemoRun run(cfg, *shared.get(), out);
  for (std::size_t i = 0; i < roles.size(); ++i) run.add(roles[i], shared.get()->reports[i]);
  fmt::print(out, "demo: channel {} ({} ring), {} messages of {}..{} bytes at {} msg/s\n",
             cfg.channel, human_bytes(static_cast<double>(kDemoCapacity)), cfg.messages,
             kDemoMinPayload, kDemoMaxPayload, human_count(cfg.rate));
  for (const DemoRole& role : roles) fmt::print(out, "  {:<10} {}\n", role.name, role.about);
  run.mark_start();
  if (!run.start(RoleKind::sink) || !run.wait_sinks_ready()) {
    if (!stop_requested()) fmt::print(stderr, "shmbus demo: the subscribers did not start\n");
    run.abort();
    return stop_requested() ? 128 + stop_signal() : kExitFailure;
  }
  run.mark_start();
  if (!run.start(RoleKind::source)) {
    run.abort();
    return kExitFailure;
  }
  run.watch();
  bool pass = run.judge();
  if (!stop_requested()) pass = print_round_trip(o.round_trips, out) && pass;
  if (stop_requested()) {
    fmt::print(out, "\ndemo: interrupted\n");
    return 128 + stop_signal();
  }
  fmt::print(out, "\ndemo: {}\n", pass ? "PASS" : "FAIL");
  return pass ? kExitOk : kExitFailure;
}

void add_demo_command(CLI::App& app) {
  auto o = std::make_shared<DemoOptions>();
  CLI::App* sub = app.add_subcommand(
      "demo",
      "Run a live channel: a publisher, the journaler, a block, a drop and a spill subscriber, "
      "live stats, checks");
  sub->add_option("--messages", o->messages, "Messages to publish")
      ->capture_default_str()
      ->transform(whole_number_in(1, kMaxU64));
  sub->add_option("--rate", o->rate, "Publishing rate, messages per second")
      ->capture_default_str()
      ->check(real_number_in(1e-3, 1e10));
  sub->add_option("--round-trips", o->round_trips,
                  "Timed round trips per round (three rounds) of the closing latency measurement; "
                  "the default takes about a second")
      ->capture_default_str()
      ->transform(whole_number_in(1, 1'000'000'000));
  sub->footer(
      "Every message carries its sequence and a checksum. Exit 0 only if the journaler (read "
      "back from its files), the block and the spill subscriber received every message once, "
      "in order, intact, and the drop subscriber's received + lost equals the published count "
      "with no bad message. Then two spinning processes pinned to two CPUs measure the round "
      "trip over shmbus and over raw shared memory, side by side: the transport's own latency. "
      "The channel (demo.<pid>) and the journal directory "
      "(/var/tmp/shmbus-demo-journal-*) are removed at the end.");
  sub->callback([o] {
    const int code = run_demo(*o, stdout);
    if (code != kExitOk) throw CLI::RuntimeError(code);
  });
}

}  // namespace shmbus::tools
