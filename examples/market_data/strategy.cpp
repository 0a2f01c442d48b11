// The strategy: a lossless (block) subscriber of the quotes channel. Per instrument it keeps an
// exponential moving average of the mid price; when the mid strays from it by more than a
// threshold it trades against the move (buys below, sells above), within a position limit, and
// publishes the order on the orders channel. The decision depends on the quotes' content only, so
// replaying a recorded session (examples/replay) produces the very same orders.
//
// It prints digests of the quotes it saw and of the orders it sent: two runs fed the same quotes
// print the same digests.
#include "example_support.hpp"
#include "messages.hpp"

#include <cmath>
#include <cstdint>
#include <unordered_map>
#include <vector>

namespace {

constexpr const char* kUsage =
    "usage: md_strategy --quotes NAME --orders NAME [--order-subscribers 2]\n"
    "                   [--idle-exit-seconds 10]\n"
    "Trades on the quotes of --quotes, publishing orders on --orders, until the end of session.\n";

constexpr double kEmaWeight = 0.2;       // weight of the newest mid in the average
constexpr double kThresholdTicks = 1.5;  // how far the mid must stray to trade
constexpr std::int64_t kPositionLimit = 2'000;

struct InstrumentState {
  double average_mid = 0;
  bool seeded = false;
  std::int64_t position = 0;
};

// The order to send for `quote`, if its signal says so.
std::optional<market_data::Order> decide(const market_data::Quote& quote, InstrumentState& state) {
  const double mid = static_cast<double>(quote.bid_price + quote.ask_price) / 2;
  if (!state.seeded) {
    state.average_mid = mid;
    state.seeded = true;
    return std::nullopt;
  }
  const double signal = mid - state.average_mid;
  state.average_mid += kEmaWeight * signal;
  const std::uint32_t quantity = 100 * (1 + static_cast<std::uint32_t>(quote.quote_id % 3));
  market_data::Order order{};
  order.quote_id = quote.quote_id;
  order.instrument_id = quote.instrument_id;
  order.quantity = quantity;
  order.quote_send_ns = quote.send_ns;
  if (signal < -kThresholdTicks && state.position + quantity <= kPositionLimit) {
    order.side = market_data::Side::buy;
    order.limit_price = quote.ask_price;
    state.position += quantity;
    return order;
  }
  if (signal > kThresholdTicks && state.position - quantity >= -kPositionLimit) {
    order.side = market_data::Side::sell;
    order.limit_price = quote.bid_price;
    state.position -= quantity;
    return order;
  }
  return std::nullopt;
}

// The order's decision fields, without the timestamps (which differ from run to run).
std::uint64_t digest_order(std::uint64_t digest, const market_data::Order& order) noexcept {
  digest = examples::fnv1a(digest, &order.order_id, sizeof order.order_id);
  digest = examples::fnv1a(digest, &order.quote_id, sizeof order.quote_id);
  digest = examples::fnv1a(digest, &order.instrument_id, sizeof order.instrument_id);
  digest = examples::fnv1a(digest, &order.side, sizeof order.side);
  digest = examples::fnv1a(digest, &order.limit_price, sizeof order.limit_price);
  return examples::fnv1a(digest, &order.quantity, sizeof order.quantity);
}

}  // namespace

int main(int argc, char** argv) {
  const examples::Options args(argc, argv, kUsage);
  const std::string quotes_channel = args.required_text("quotes");
  const std::string orders_channel = args.required_text("orders");
  const std::int64_t idle_exit_ns =
      static_cast<std::int64_t>(args.number("idle-exit-seconds", 10)) * 1'000'000'000;
  examples::stop_on_signals();

  shmbus::ChannelOptions order_options;
  order_options.capacity = 1 << 20;
  order_options.max_message = 256;
  order_options.single_producer = true;
  auto orders = shmbus::Publisher::open(orders_channel, order_options);
  if (!orders) {
    fmt::print(stderr, "strategy: {}\n", orders.error().message);
    return 1;
  }
  // The gateway must be listening before the first order, and so before the first quote: the
  // feed handler waits for this subscriber, which attaches only once the orders side is ready.
  const std::size_t order_subscribers = args.number("order-subscribers", 2);
  if (!examples::wait_for_subscribers(orders_channel, order_subscribers, std::chrono::seconds(10))) {
    fmt::print(stderr, "strategy: {} subscribers did not attach to {} within 10 s\n",
               order_subscribers, orders_channel);
    return 1;
  }
  shmbus::SubscriberOptions quote_options;
  quote_options.policy = shmbus::Policy::block;  // every quote, in order: the feed waits for us
  quote_options.open_timeout = std::chrono::seconds(10);
  auto quotes = shmbus::Subscriber::open(quotes_channel, quote_options);
  if (!quotes) {
    fmt::print(stderr, "strategy: {}\n", quotes.error().message);
    return 1;
  }

  std::unordered_map<std::uint32_t, InstrumentState> instruments;
  std::vector<std::int64_t> hop_latencies;  // quote publish -> strategy, by the channel's clock
  hop_latencies.reserve(1 << 20);
  std::uint64_t quotes_seen = 0, first_quote_id = 0, next_quote_id = 0, out_of_order = 0;
  std::uint64_t quote_digest = examples::kFnvOffsetBasis;
  std::uint64_t order_digest = examples::kFnvOffsetBasis;
  std::uint64_t orders_sent = 0;
  bool session_over = false, failed = false;

  auto send = [&](market_data::Order order) {
    order.order_id = orders_sent + 1;
    shmbus::Claim claim;
    if (orders->claim(sizeof order, claim, std::chrono::seconds(5)) != shmbus::PublishStatus::ok) {
      failed = true;
      return;
    }
    order.order_send_ns = examples::monotonic_ns();
    std::memcpy(claim.data(), &order, sizeof order);
    if (orders->commit(claim) != shmbus::PublishStatus::ok) failed = true;
    ++orders_sent;
    order_digest = digest_order(order_digest, order);
  };

  auto on_quote = [&](const shmbus::Message& message) {
    const auto quote = market_data::decode<market_data::Quote>(message.payload);
    if (!quote || session_over) return;
    if (quote->flags & market_data::kEndOfSession) {
      market_data::Order end{};
      end.flags = market_data::kEndOfSession;
      end.quote_id = quote->quote_id;
      send(end);
      session_over = true;
      return;
    }
    hop_latencies.push_back(examples::realtime_ns() - message.timestamp_ns);
    if (quotes_seen == 0) first_quote_id = next_quote_id = quote->quote_id;
    if (quote->quote_id != next_quote_id) ++out_of_order;
    next_quote_id = quote->quote_id + 1;
    ++quotes_seen;
    quote_digest = examples::fnv1a(quote_digest, message.payload.data(), message.payload.size());
    if (auto order = decide(*quote, instruments[quote->instrument_id])) send(*order);
  };

  std::int64_t last_message_ns = examples::monotonic_ns();
  while (!session_over && !failed && !examples::stopping()) {
    if (quotes->poll(on_quote) > 0) {
      last_message_ns = examples::monotonic_ns();
    } else if (examples::monotonic_ns() - last_message_ns > idle_exit_ns) {
      fmt::print(stderr, "strategy: no quote for {} s, giving up\n", idle_exit_ns / 1'000'000'000);
      break;
    } else {
      quotes->wait(std::chrono::milliseconds(100));  // spins 50 us, then sleeps on a futex
    }
  }
  if (failed) {
    fmt::print(stderr, "strategy: publishing an order failed\n");
    return 1;
  }
  fmt::print("strategy: {} quotes (ids {}..{}), in order: {}, lost {}, quote digest {:016x}\n",
             quotes_seen, first_quote_id, quotes_seen == 0 ? 0 : next_quote_id - 1,
             out_of_order == 0 ? "yes" : "no", quotes->lost(), quote_digest);
  fmt::print("strategy: sent {} orders, order digest {:016x}\n", orders_sent - (session_over ? 1 : 0),
             order_digest);
  fmt::print("strategy: quote publish -> strategy: {}\n",
             examples::describe(examples::summarize(std::move(hop_latencies))));
  return session_over ? 0 : 1;
}
