// A hand-written responder rather than a library: Debian 12's prometheus-cpp pull brings civetweb,
// a multi-threaded general web server (CGI, SSL, Lua) whose worker threads would read channels
// concurrently under the tools' one process-wide SIGBUS guard, and prometheus-cpp serializes its
// own registry rather than the exposition `stat --prometheus` already prints for textfile
// collectors. One route over one poll() loop is a few hundred lines that the tests drive with a
// real TCP client.
#include "tools/metrics_listener.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <utility>
#include <vector>

#include <fmt/format.h>

namespace shmbus::tools {

std::optional<ListenAddress> parse_listen_address(std::string_view text) {
  const std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  std::string_view host = text.substr(0, colon);
  const std::string_view port = text.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string_view::npos) {
    return std::nullopt;  // an IPv6 address needs its brackets
  }
  unsigned value = 0;
  const auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || error != std::errc() || end != port.data() + port.size() || value > 65535) {
    return std::nullopt;
  }
  return ListenAddress{std::string(host), static_cast<std::uint16_t>(value)};
}

namespace {

std::string http_answer(int status, std::string_view reason, std::string_view content_type,
                        std::string_view body, bool with_body, std::string_view extra = {}) {
  return fmt::format(
      "HTTP/1.0 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n{}\r\n{}",
      status, reason, content_type, body.size(), extra, with_body ? body : std::string_view());
}

constexpr std::string_view kPlainText = "text/plain; charset=utf-8";

}  // namespace

std::string answer_http_request(std::string_view head,
                                const std::function<Result<std::string>()>& scrape) {
  const std::string_view line = head.substr(0, head.find_first_of("\r\n"));
  const std::size_t first_space = line.find(' ');
  const std::size_t second_space =
      first_space == std::string_view::npos ? first_space : line.find(' ', first_space + 1);
  if (second_space == std::string_view::npos ||
      line.substr(second_space + 1).rfind("HTTP/", 0) != 0) {
    return http_answer(400, "Bad Request", kPlainText, "not an HTTP request\n", true);
  }
  const std::string_view method = line.substr(0, first_space);
  const std::string_view target = line.substr(first_space + 1, second_space - first_space - 1);
  const bool head_only = method == "HEAD";
  if (method != "GET" && !head_only) {
    return http_answer(405, "Method Not Allowed", kPlainText, "only GET and HEAD\n", true,
                       "Allow: GET, HEAD\r\n");
  }
  if (target.substr(0, target.find('?')) != "/metrics") {
    return http_answer(404, "Not Found", kPlainText, "the metrics are at /metrics\n", !head_only);
  }
  Result<std::string> exposition = scrape();
  if (!exposition) {
    return http_answer(500, "Internal Server Error", kPlainText,
                       fmt::format("{}\n", exposition.error().message), !head_only);
  }
  return http_answer(200, "OK", "text/plain; version=0.0.4; charset=utf-8", *exposition,
                     !head_only);
}

namespace {

std::int64_t listener_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// One accepted connection: its request head as it arrives, then its answer as it leaves.
struct HttpClient {
  int fd = -1;
  std::int64_t deadline_ms = 0;
  std::string request;
  std::string answer;
  std::size_t sent = 0;
  bool answering = false;
};

// The end of the request head (after its blank line), or npos while it is incomplete.
std::size_t head_end(const std::string& request) {
  const std::size_t crlf = request.find("\r\n\r\n");
  if (crlf != std::string::npos) return crlf + 4;
  const std::size_t lf = request.find("\n\n");
  return lf == std::string::npos ? lf : lf + 2;
}

// Reads what the client sent; false when the connection is over (closed by the peer, an error).
bool read_request(HttpClient& client, const ListenerLimits& limits,
                  const std::function<Result<std::string>()>& scrape) {
  char buffer[4096];
  const ssize_t n = ::recv(client.fd, buffer, sizeof buffer, MSG_DONTWAIT);
  if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
  if (n == 0) return false;  // the client gave up before its request was complete
  client.request.append(buffer, static_cast<std::size_t>(n));
  const std::size_t end = head_end(client.request);
  if (end != std::string::npos) {
    client.answer = answer_http_request(std::string_view(client.request).substr(0, end), scrape);
    client.answering = true;
  } else if (client.request.size() > limits.max_request_bytes) {
    client.answer = http_answer(431, "Request Header Fields Too Large", kPlainText,
                                "request too large\n", true);
    client.answering = true;
  }
  if (client.answering) client.request.clear();
  return true;
}

// Sends what the socket takes; false once the answer is out or the client is gone.
bool write_answer(HttpClient& client) {
  const ssize_t n = ::send(client.fd, client.answer.data() + client.sent,
                           client.answer.size() - client.sent, MSG_DONTWAIT | MSG_NOSIGNAL);
  if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
  client.sent += static_cast<std::size_t>(n);
  return client.sent < client.answer.size();
}

}  // namespace

Result<MetricsListener> MetricsListener::open(const ListenAddress& address) {
  const std::string port = std::to_string(address.port);
  // Every interface: IPv6's any-address also takes IPv4 unless the host has no IPv6.
  const std::vector<std::string> hosts = address.host.empty()
                                             ? std::vector<std::string>{"::", "0.0.0.0"}
                                             : std::vector<std::string>{address.host};
  std::string why = "no address";
  for (const std::string& host : hosts) {
    struct addrinfo hints {};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    struct addrinfo* found = nullptr;
    const int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &found);
    if (rc != 0) {
      why = ::gai_strerror(rc);
      continue;
    }
    for (const struct addrinfo* a = found; a != nullptr; a = a->ai_next) {
      const int fd =
          ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
      if (fd < 0) {
        why = std::strerror(errno);
        continue;
      }
      const int on = 1;
      const int off = 0;
      ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
      if (a->ai_family == AF_INET6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
      if (::bind(fd, a->ai_addr, a->ai_addrlen) == 0 && ::listen(fd, 64) == 0) {
        ::freeaddrinfo(found);
        return MetricsListener(fd);
      }
      why = std::strerror(errno);
      ::close(fd);
    }
    ::freeaddrinfo(found);
  }
  return tl::unexpected(Error{ErrorCode::system, fmt::format("cannot listen on {}:{}: {}",
                                                             address.host, address.port, why)});
}

MetricsListener::MetricsListener(MetricsListener&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)) {}

MetricsListener& MetricsListener::operator=(MetricsListener&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

MetricsListener::~MetricsListener() {
  if (fd_ >= 0) ::close(fd_);
}

std::string MetricsListener::address() const {
  struct sockaddr_storage bound {};
  socklen_t size = sizeof bound;
  if (::getsockname(fd_, reinterpret_cast<struct sockaddr*>(&bound), &size) != 0) return "?";
  char host[INET6_ADDRSTRLEN] = "?";
  if (bound.ss_family == AF_INET6) {
    const auto* v6 = reinterpret_cast<const struct sockaddr_in6*>(&bound);
    ::inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof host);
    return fmt::format("[{}]:{}", host, ntohs(v6->sin6_port));
  }
  const auto* v4 = reinterpret_cast<const struct sockaddr_in*>(&bound);
  ::inet_ntop(AF_INET, &v4->sin_addr, host, sizeof host);
  return fmt::format("{}:{}", host, ntohs(v4->sin_port));
}

void MetricsListener::serve(const std::function<Result<std::string>()>& scrape,
                            const std::function<bool()>& stop, const ListenerLimits& limits) {
  constexpr std::int64_t kStopCheckMs = 100;
  std::vector<HttpClient> clients;
  std::vector<struct pollfd> polled;
  while (!stop()) {
    const std::int64_t now = listener_now_ms();
    // A client past its deadline (a slow or stuck one) is dropped, whatever it was doing.
    std::erase_if(clients, [&](const HttpClient& c) {
      if (c.deadline_ms > now) return false;
      ::close(c.fd);
      return true;
    });
    std::int64_t wait_ms = kStopCheckMs;
    polled.clear();
    for (const HttpClient& c : clients) {
      polled.push_back({c.fd, static_cast<short>(c.answering ? POLLOUT : POLLIN), 0});
      wait_ms = std::min(wait_ms, c.deadline_ms - now);
    }
    const bool accepting = clients.size() < limits.max_clients;
    if (accepting) polled.push_back({fd_, POLLIN, 0});
    const int ready =
        ::poll(polled.data(), polled.size(), static_cast<int>(std::max<std::int64_t>(wait_ms, 0)));
    if (ready <= 0) continue;  // a timeout, or EINTR: check stop and the deadlines again

    std::vector<bool> done(clients.size(), false);
    for (std::size_t i = 0; i < clients.size(); ++i) {
      if (polled[i].revents == 0) continue;
      HttpClient& c = clients[i];
      const bool open = c.answering ? write_answer(c) : read_request(c, limits, scrape);
      done[i] = !open || (polled[i].revents & (POLLERR | POLLNVAL)) != 0;
    }
    for (std::size_t i = clients.size(); i-- > 0;) {
      if (!done[i]) continue;
      ::close(clients[i].fd);
      clients.erase(clients.begin() + static_cast<std::ptrdiff_t>(i));
    }
    if (accepting && (polled.back().revents & POLLIN) != 0) {
      while (clients.size() < limits.max_clients) {
        const int fd = ::accept4(fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) break;  // EAGAIN: no more waiting; other errors: the client is gone
        clients.push_back(
            HttpClient{fd, listener_now_ms() + limits.client_timeout_ms, {}, {}, 0, false});
      }
    }
  }
  for (const HttpClient& c : clients) ::close(c.fd);
}

}  // namespace shmbus::tools
