// The order gateway: a lossless (block) subscriber of the orders channel that "acks" each order
// (here: counts it) and checks the stream, orders 1, 2, 3, ... each once, on consecutive channel
// sequences. It measures the end-to-end latency from the quote's send time (stamped by the feed
// handler, carried through the order by the strategy) to the order's arrival here.
#include "example_support.hpp"
#include "messages.hpp"

#include <cstdint>
#include <vector>

namespace {

constexpr const char* kUsage =
    "usage: md_order_gateway --orders NAME [--idle-exit-seconds 10]\n"
    "Acks the orders of --orders until the end of session.\n";

}  // namespace

int main(int argc, char** argv) {
  const examples::Options args(argc, argv, kUsage);
  const std::string orders_channel = args.required_text("orders");
  const std::int64_t idle_exit_ns =
      static_cast<std::int64_t>(args.number("idle-exit-seconds", 10)) * 1'000'000'000;
  examples::stop_on_signals();

  shmbus::SubscriberOptions options;
  options.policy = shmbus::Policy::block;  // an order is never dropped: the strategy waits for us
  options.open_timeout = std::chrono::seconds(10);
  auto orders = shmbus::Subscriber::open(orders_channel, options);
  if (!orders) {
    fmt::print(stderr, "order gateway: {}\n", orders.error().message);
    return 1;
  }

  std::vector<std::int64_t> end_to_end;  // quote send -> order received here
  std::vector<std::int64_t> order_hop;   // order send -> order received here
  end_to_end.reserve(1 << 20);
  order_hop.reserve(1 << 20);
  std::uint64_t acked = 0, missing = 0, repeated = 0, sequence_breaks = 0;
  std::uint64_t last_order_id = 0, last_sequence = 0;
  bool session_over = false;

  auto on_order = [&](const shmbus::Message& message) {
    const std::int64_t received_ns = examples::monotonic_ns();
    if (last_sequence != 0 && message.sequence != last_sequence + 1) ++sequence_breaks;
    last_sequence = message.sequence;
    const auto order = market_data::decode<market_data::Order>(message.payload);
    if (!order || session_over) return;
    if (order->flags & market_data::kEndOfSession) {
      session_over = true;
      return;
    }
    if (order->order_id <= last_order_id) {
      ++repeated;  // a duplicate (or one out of order): never ack it twice
      return;
    }
    missing += order->order_id - last_order_id - 1;
    last_order_id = order->order_id;
    ++acked;
    end_to_end.push_back(received_ns - order->quote_send_ns);
    order_hop.push_back(received_ns - order->order_send_ns);
  };

  std::int64_t last_message_ns = examples::monotonic_ns();
  while (!session_over && !examples::stopping()) {
    if (orders->poll(on_order) > 0) {
      last_message_ns = examples::monotonic_ns();
    } else if (examples::monotonic_ns() - last_message_ns > idle_exit_ns) {
      fmt::print(stderr, "order gateway: no order for {} s, giving up\n",
                 idle_exit_ns / 1'000'000'000);
      break;
    } else {
      orders->wait(std::chrono::milliseconds(100));
    }
  }
  const bool intact = missing == 0 && repeated == 0 && sequence_breaks == 0;
  fmt::print("order gateway: acked {} orders (ids 1..{}), each once and in order: {} (missing {}, "
             "repeated {}, sequence breaks {})\n",
             acked, last_order_id, intact ? "yes" : "no", missing, repeated, sequence_breaks);
  fmt::print("order gateway: quote send -> order received: {}\n",
             examples::describe(examples::summarize(std::move(end_to_end))));
  fmt::print("order gateway: order send -> order received: {}\n",
             examples::describe(examples::summarize(std::move(order_hop))));
  return session_over && intact ? 0 : 1;
}
