// The pipeline's wire formats: a quote (feed handler -> strategy, risk monitor, recorder) and an
// order (strategy -> order gateway, risk monitor). Fixed-layout, trivially copyable structs, copied
// as bytes into the ring: every process of the pipeline runs on this host, built by this compiler,
// so there is no encoding step. Prices are integers in ticks (no rounding between processes).
// Changing a struct changes its size, which the static_asserts catch: bump them together with every
// reader, and with the recorded journals you still want to replay.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <type_traits>

namespace market_data {

inline constexpr std::uint32_t kEndOfSession = 1;  // flags: the last message of a session

struct Quote {
  std::uint64_t quote_id;       // 0, 1, 2, ... in a session: a missing id is a lost quote
  std::uint32_t instrument_id;  // 1 .. instruments
  std::uint32_t flags;          // kEndOfSession
  std::int64_t bid_price;       // ticks
  std::int64_t ask_price;       // ticks
  std::uint32_t bid_size;
  std::uint32_t ask_size;
  std::int64_t exchange_ns;     // the exchange's timestamp (CLOCK_REALTIME; simulated here)
  std::int64_t send_ns;         // the feed handler's CLOCK_MONOTONIC just before it published
};
static_assert(std::is_trivially_copyable_v<Quote> && std::is_standard_layout_v<Quote>);
static_assert(sizeof(Quote) == 56, "Quote's layout is the wire format");

enum class Side : std::int8_t { buy = 1, sell = -1 };

struct Order {
  std::uint64_t order_id;       // 1, 2, 3, ... in a session: the gateway checks continuity
  std::uint64_t quote_id;       // the quote whose signal triggered it
  std::uint32_t instrument_id;
  Side side;
  std::uint8_t flags;           // kEndOfSession
  std::uint16_t reserved;       // zero: keeps the layout free of padding
  std::int64_t limit_price;     // ticks
  std::uint32_t quantity;
  std::uint32_t reserved2;      // zero
  std::int64_t quote_send_ns;   // the triggering quote's send_ns: end-to-end latency starts there
  std::int64_t order_send_ns;   // the strategy's CLOCK_MONOTONIC just before it published
};
static_assert(std::is_trivially_copyable_v<Order> && std::is_standard_layout_v<Order>);
static_assert(sizeof(Order) == 56, "Order's layout is the wire format");

// A payload as T, if it has T's size (a message of another kind or version does not).
template <class T>
std::optional<T> decode(std::span<const std::byte> payload) noexcept {
  if (payload.size() != sizeof(T)) return std::nullopt;
  T value;
  std::memcpy(&value, payload.data(), sizeof value);
  return value;
}

}  // namespace market_data
