// `stat --prometheus --listen ADDR:PORT`: the exposition served over HTTP to Prometheus.
//
// One thread, one poll() loop over the listening socket and its clients, so a scrape never runs
// concurrently with another, and no client can hold the others up: each one has a bounded request
// (answered 431 past it) and a deadline from its accept, after which it is closed. Every answer
// closes its connection (HTTP/1.0 style, with Content-Length), which every scraper accepts.
//   GET or HEAD /metrics (any query)   200, text/plain; version=0.0.4, a fresh scrape
//   any other path                     404
//   any other method                   405
//   not a request line                 400
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "shmbus/result.hpp"

namespace shmbus::tools {

struct ListenAddress {
  std::string host;        // a name or an address; "" listens on every interface
  std::uint16_t port = 0;  // 0: the kernel picks a free one (MetricsListener::address says which)
};

// "127.0.0.1:9464", "localhost:9464", "[::1]:9464", ":9464" (every interface); nothing when it is
// not HOST:PORT with a port from 0 to 65535.
std::optional<ListenAddress> parse_listen_address(std::string_view text);

// The whole HTTP answer to one request head (the bytes before its blank line). `scrape` is called
// only for /metrics; its error becomes a 500 whose body is the error's message.
std::string answer_http_request(std::string_view head,
                                const std::function<Result<std::string>()>& scrape);

struct ListenerLimits {
  std::size_t max_request_bytes = 8192;   // a longer request head gets 431 and is closed
  std::int64_t client_timeout_ms = 5000;  // from accept to the last byte of the answer
  std::size_t max_clients = 64;           // more wait in the kernel's backlog
};

class MetricsListener {
 public:
  // Binds and listens. Errors name the address and the reason (address in use, permission).
  static Result<MetricsListener> open(const ListenAddress& address);

  MetricsListener(MetricsListener&& other) noexcept;
  MetricsListener& operator=(MetricsListener&& other) noexcept;
  MetricsListener(const MetricsListener&) = delete;
  MetricsListener& operator=(const MetricsListener&) = delete;
  ~MetricsListener();

  // The bound address: "127.0.0.1:9464", "[::]:9464".
  std::string address() const;

  // Answers requests until `stop` returns true (checked at least every 100 ms, and after each
  // signal that interrupts the wait).
  void serve(const std::function<Result<std::string>()>& scrape, const std::function<bool()>& stop,
             const ListenerLimits& limits = {});

 private:
  explicit MetricsListener(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace shmbus::tools
