// The risk monitor: watches both channels with the drop policy, so it can never slow the trading
// path down; when it falls a ring behind it loses messages, and counts them (by sequence gap).
// From the orders (taken as filled at their limit price) it keeps a position per instrument, and
// values it at the latest mid: the gross exposure. It runs until SIGINT or SIGTERM, then reads
// what the rings still hold and reports.
#include "example_support.hpp"
#include "messages.hpp"

#include <cstdint>
#include <cstdlib>
#include <map>

namespace {

constexpr const char* kUsage =
    "usage: md_risk_monitor --quotes NAME --orders NAME\n"
    "Watches both channels (drop policy) until SIGINT or SIGTERM, then reports.\n";

struct Exposure {
  std::int64_t position = 0;  // signed quantity
  std::int64_t last_mid = 0;  // ticks
};

}  // namespace

int main(int argc, char** argv) {
  const examples::Options args(argc, argv, kUsage);
  examples::stop_on_signals();

  shmbus::SubscriberOptions options;
  options.policy = shmbus::Policy::drop;  // never gates the feed or the strategy
  options.open_timeout = std::chrono::seconds(10);
  auto quotes = shmbus::Subscriber::open(args.required_text("quotes"), options);
  auto orders = shmbus::Subscriber::open(args.required_text("orders"), options);
  if (!quotes || !orders) {
    fmt::print(stderr, "risk monitor: {}\n",
               (!quotes ? quotes.error() : orders.error()).message);
    return 1;
  }

  std::map<std::uint32_t, Exposure> book;
  std::int64_t peak_gross_exposure = 0;
  auto gross_exposure = [&] {
    std::int64_t gross = 0;
    for (const auto& [instrument, exposure] : book) {
      gross += std::llabs(exposure.position) * exposure.last_mid;
    }
    return gross;
  };
  auto on_quote = [&](const shmbus::Message& message) {
    const auto quote = market_data::decode<market_data::Quote>(message.payload);
    if (!quote || quote->flags & market_data::kEndOfSession) return;
    book[quote->instrument_id].last_mid = (quote->bid_price + quote->ask_price) / 2;
  };
  auto on_order = [&](const shmbus::Message& message) {
    const auto order = market_data::decode<market_data::Order>(message.payload);
    if (!order || order->flags & market_data::kEndOfSession) return;
    book[order->instrument_id].position +=
        static_cast<std::int64_t>(order->side) * static_cast<std::int64_t>(order->quantity);
    peak_gross_exposure = std::max(peak_gross_exposure, gross_exposure());
  };

  while (!examples::stopping()) {
    const std::size_t handled = quotes->poll(on_quote) + orders->poll(on_order);
    if (handled == 0) quotes->wait(std::chrono::milliseconds(10));
  }
  while (quotes->poll(on_quote) + orders->poll(on_order) > 0) {
  }

  fmt::print("risk monitor: quotes received {}, lost {}; orders received {}, lost {}\n",
             quotes->received(), quotes->lost(), orders->received(), orders->lost());
  std::string positions;
  for (const auto& [instrument, exposure] : book) {
    positions += fmt::format(" {}:{:+}", instrument, exposure.position);
  }
  fmt::print("risk monitor: positions (instrument:quantity){}; gross exposure {} ticks (peak {})\n",
             positions.empty() ? " none" : positions, gross_exposure(), peak_gross_exposure);
  return 0;
}
