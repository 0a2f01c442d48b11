// The feed handler: publishes a session of simulated quotes (a random walk per instrument) on the
// quotes channel at a fixed rate, then an end-of-session quote. It creates the channel and waits
// until its subscribers have attached, so that nobody misses the start of the session.
#include "example_support.hpp"
#include "messages.hpp"

#include <chrono>
#include <cstdint>
#include <vector>

namespace {

constexpr const char* kUsage =
    "usage: md_feed_handler --channel NAME [--quotes 10000] [--rate 10000] [--instruments 4]\n"
    "                       [--subscribers 3] [--seed 1]\n"
    "Publishes --quotes quotes at --rate per second once --subscribers are attached.\n";

// A small deterministic generator (xorshift64): the same seed gives the same session, so two runs
// of the pipeline can be compared quote for quote.
class RandomWalk {
 public:
  explicit RandomWalk(std::uint64_t seed) : state_(seed * 0x9e3779b97f4a7c15ull + 1) {}
  std::uint64_t next() noexcept {
    state_ ^= state_ << 13;
    state_ ^= state_ >> 7;
    state_ ^= state_ << 17;
    return state_;
  }

 private:
  std::uint64_t state_;
};

}  // namespace

int main(int argc, char** argv) {
  const examples::Options args(argc, argv, kUsage);
  const std::string channel = args.required_text("channel");
  const std::uint64_t quotes = args.number("quotes", 10'000);
  const double rate = args.real("rate", 10'000);
  const auto instruments = static_cast<std::uint32_t>(args.number("instruments", 4));
  if (rate <= 0 || instruments == 0) args.fail("--rate and --instruments must be positive");
  examples::stop_on_signals();

  shmbus::ChannelOptions options;
  options.capacity = 1 << 22;
  options.max_message = 256;
  options.single_producer = true;  // one feed handler per channel: claims need no CAS
  auto publisher = shmbus::Publisher::open(channel, options);
  if (!publisher) {
    fmt::print(stderr, "feed handler: {}\n", publisher.error().message);
    return 1;
  }
  const std::size_t subscribers = args.number("subscribers", 3);
  if (!examples::wait_for_subscribers(channel, subscribers, std::chrono::seconds(10))) {
    fmt::print(stderr, "feed handler: {} subscribers did not attach to {} within 10 s\n",
               subscribers, channel);
    return 1;
  }

  RandomWalk random(args.number("seed", 1));
  std::vector<std::int64_t> mid(instruments + 1, 1'000'000);  // ticks, per instrument id
  std::uint64_t back_pressured = 0;
  auto publish = [&](const market_data::Quote& quote) {
    shmbus::Claim claim;
    shmbus::PublishStatus status = publisher->try_claim(sizeof quote, claim);
    if (status == shmbus::PublishStatus::back_pressured) {
      ++back_pressured;  // a block subscriber (strategy, recorder) is a ring behind: wait for it
      status = publisher->claim(sizeof quote, claim, std::chrono::seconds(5));
    }
    if (status != shmbus::PublishStatus::ok) return status;
    market_data::Quote stamped = quote;
    stamped.send_ns = examples::monotonic_ns();  // as late as possible: latency starts here
    std::memcpy(claim.data(), &stamped, sizeof stamped);
    return publisher->commit(claim);
  };

  const double period_ns = 1e9 / rate;
  const std::int64_t start_ns = examples::monotonic_ns();
  std::uint64_t published = 0;
  for (; published < quotes && !examples::stopping(); ++published) {
    const double offset_ns = static_cast<double>(published) * period_ns;
    examples::sleep_until_ns(start_ns + static_cast<std::int64_t>(offset_ns));
    const auto instrument = static_cast<std::uint32_t>(published % instruments) + 1;
    const std::uint64_t draw = random.next();
    mid[instrument] += static_cast<std::int64_t>(draw % 5) - 2;  // -2 .. +2 ticks
    const std::int64_t half_spread = 1 + static_cast<std::int64_t>((draw >> 8) % 2);
    const market_data::Quote quote{published,
                                   instrument,
                                   0,
                                   mid[instrument] - half_spread,
                                   mid[instrument] + half_spread,
                                   static_cast<std::uint32_t>(100 * (1 + (draw >> 16) % 10)),
                                   static_cast<std::uint32_t>(100 * (1 + (draw >> 24) % 10)),
                                   examples::realtime_ns(),
                                   0};
    if (const auto status = publish(quote); status != shmbus::PublishStatus::ok) {
      fmt::print(stderr, "feed handler: publishing quote {} failed: {}\n", published,
                 shmbus::to_string(status));
      return 1;
    }
  }
  const std::int64_t elapsed_ns = examples::monotonic_ns() - start_ns;
  const market_data::Quote end{published, 0, market_data::kEndOfSession, 0, 0, 0, 0,
                               examples::realtime_ns(), 0};
  if (const auto status = publish(end); status != shmbus::PublishStatus::ok) {
    fmt::print(stderr, "feed handler: publishing the end of session failed: {}\n",
               shmbus::to_string(status));
    return 1;
  }
  fmt::print("feed handler: published {} quotes on {} in {:.3f} s ({:.0f}/s), back-pressured {} "
             "times\n",
             published, channel, static_cast<double>(elapsed_ns) / 1e9,
             static_cast<double>(published) * 1e9 / static_cast<double>(std::max<std::int64_t>(elapsed_ns, 1)),
             back_pressured);
  return 0;
}
