// `stat --prometheus --listen`: the HTTP answers (routes, status lines, headers), the listener
// against real TCP clients (a fresh scrape per request; a stuck, an oversized and a garbage client
// cannot stop the others), and the command end to end, its exposition parsed strictly.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "shmbus/stats.hpp"
#include "tests/support/process.hpp"
#include "tests/tools/exposition_parser.hpp"
#include "tools/metrics_listener.hpp"

namespace {

using namespace std::chrono_literals;
using shmbus::Error;
using shmbus::ErrorCode;
using shmbus::Result;
using shmbus::test::ChannelGuard;
using shmbus::test::Child;
using shmbus::test::unique_channel;
using shmbus::tools::answer_http_request;
using shmbus::tools::ListenAddress;
using shmbus::tools::ListenerLimits;
using shmbus::tools::MetricsListener;
using shmbus::tools::parse_listen_address;

Result<std::string> fixed_scrape() { return std::string("m{channel=\"a\"} 1\n"); }

// --- addresses and answers ----------------------------------------------------------------------

TEST(MetricsListenerAddress, AcceptsHostPortEveryInterfaceAndBracketedIpv6) {
  const auto local = parse_listen_address("127.0.0.1:9464");
  ASSERT_TRUE(local);
  EXPECT_EQ(local->host, "127.0.0.1");
  EXPECT_EQ(local->port, 9464);
  const auto every = parse_listen_address(":9464");
  ASSERT_TRUE(every);
  EXPECT_EQ(every->host, "");
  const auto v6 = parse_listen_address("[::1]:0");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 0);
  for (const char* bad : {"9464", "host:", "host:65536", "host:-1", "host:12x", "::1:9464", ""}) {
    EXPECT_FALSE(parse_listen_address(bad)) << bad;
  }
}

TEST(MetricsListenerAnswer, MetricsIsTheScrapeAsTextVersion004) {
  const std::string a =
      answer_http_request("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", fixed_scrape);
  EXPECT_EQ(a.rfind("HTTP/1.0 200 OK\r\n", 0), 0u) << a;
  EXPECT_NE(a.find("\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"),
            std::string::npos);
  EXPECT_NE(a.find("\r\nContent-Length: 17\r\n"), std::string::npos) << a;
  EXPECT_EQ(a.substr(a.find("\r\n\r\n") + 4), "m{channel=\"a\"} 1\n");
  // A query string is still /metrics; HEAD has the headers only.
  EXPECT_EQ(
      answer_http_request("GET /metrics?x=1 HTTP/1.0\n\n", fixed_scrape).rfind("HTTP/1.0 200", 0),
      0u);
  const std::string head = answer_http_request("HEAD /metrics HTTP/1.1\r\n\r\n", fixed_scrape);
  EXPECT_EQ(head.rfind("HTTP/1.0 200", 0), 0u);
  EXPECT_EQ(head.substr(head.find("\r\n\r\n") + 4), "");
}

TEST(MetricsListenerAnswer, OtherPathsMethodsAndGarbageGetTheirErrors) {
  int scrapes = 0;
  const auto counting = [&]() -> Result<std::string> {
    ++scrapes;
    return std::string();
  };
  EXPECT_EQ(answer_http_request("GET / HTTP/1.1\r\n\r\n", counting).rfind("HTTP/1.0 404", 0), 0u);
  EXPECT_EQ(
      answer_http_request("GET /metricsx HTTP/1.1\r\n\r\n", counting).rfind("HTTP/1.0 404", 0), 0u);
  const std::string post = answer_http_request("POST /metrics HTTP/1.1\r\n\r\n", counting);
  EXPECT_EQ(post.rfind("HTTP/1.0 405", 0), 0u);
  EXPECT_NE(post.find("\r\nAllow: GET, HEAD\r\n"), std::string::npos);
  for (const char* garbage : {"", "\x01\x02\xff\n\n", "GET\r\n\r\n", "GET /metrics\r\n\r\n",
                              "GET /metrics FTP/1\r\n\r\n"}) {
    EXPECT_EQ(answer_http_request(garbage, counting).rfind("HTTP/1.0 400", 0), 0u) << garbage;
  }
  EXPECT_EQ(scrapes, 0);  // only /metrics reads channels
}

TEST(MetricsListenerAnswer, AFailedScrapeIsA500WithItsMessage) {
  const auto failing = []() -> Result<std::string> {
    return tl::unexpected(Error{ErrorCode::not_found, "channel 'x' does not exist"});
  };
  const std::string a = answer_http_request("GET /metrics HTTP/1.1\r\n\r\n", failing);
  EXPECT_EQ(a.rfind("HTTP/1.0 500", 0), 0u);
  EXPECT_EQ(a.substr(a.find("\r\n\r\n") + 4), "channel 'x' does not exist\n");
}

// --- over TCP -----------------------------------------------------------------------------------

// A connected TCP socket to 127.0.0.1:port, closed by the destructor.
class TcpClient {
 public:
  explicit TcpClient(std::uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&to), sizeof to) == 0;
  }
  ~TcpClient() { ::close(fd_); }
  TcpClient(const TcpClient&) = delete;
  TcpClient& operator=(const TcpClient&) = delete;

  bool connected() const { return connected_; }
  bool send(const std::string& bytes) {
    return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(bytes.size());
  }
  // Everything until the server closes, or nothing if it has not closed within `timeout`.
  std::optional<std::string> read_to_end(std::chrono::milliseconds timeout) {
    std::string got;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buffer[65536];
      const ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
      if (n <= 0) return got;  // closed (or reset: what arrived before counts)
      got.append(buffer, static_cast<std::size_t>(n));
    }
  }

 private:
  int fd_;
  bool connected_ = false;
};

std::optional<std::string> http_get(std::uint16_t port, const std::string& path) {
  TcpClient client(port);
  if (!client.connected() || !client.send("GET " + path + " HTTP/1.1\r\nHost: t\r\n\r\n")) {
    return std::nullopt;
  }
  return client.read_to_end(5s);
}

std::string body_of(const std::string& answer) {
  const std::size_t end = answer.find("\r\n\r\n");
  return end == std::string::npos ? std::string() : answer.substr(end + 4);
}

std::uint16_t port_of(const std::string& address) {
  return static_cast<std::uint16_t>(std::stoi(address.substr(address.rfind(':') + 1)));
}

// The listener on a free port, served by a thread until the fixture ends.
class ServedListener : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = MetricsListener::open(ListenAddress{"127.0.0.1", 0});
    ASSERT_TRUE(opened) << opened.error().message;
    listener_.emplace(std::move(*opened));
    port_ = port_of(listener_->address());
    ASSERT_NE(port_, 0);
    ListenerLimits limits;
    limits.client_timeout_ms = 1000;
    limits.max_request_bytes = 1024;
    server_ = std::thread([this, limits] {
      listener_->serve(
          [this]() -> Result<std::string> {
            // relaxed: the count is read by the test thread only after an answer that the
            // socket's send/recv already ordered after this increment.
            const int n = scrapes_.fetch_add(1, std::memory_order_relaxed) + 1;
            return "scrape_number{channel=\"x\"} " + std::to_string(n) + "\n";
          },
          // relaxed: a flag polled every 100 ms; nothing else is published with it.
          [this] { return stop_.load(std::memory_order_relaxed); }, limits);
    });
  }
  void TearDown() override {
    // Relaxed: only the flag is handed over; join() orders everything after.
    stop_.store(true, std::memory_order_relaxed);
    if (server_.joinable()) server_.join();
  }

  std::optional<MetricsListener> listener_;
  std::uint16_t port_ = 0;
  std::atomic<int> scrapes_{0};
  std::atomic<bool> stop_{false};
  std::thread server_;
};

TEST_F(ServedListener, EveryRequestGetsAFreshScrape) {
  for (int n = 1; n <= 3; ++n) {
    const auto answer = http_get(port_, "/metrics");
    ASSERT_TRUE(answer);
    EXPECT_EQ(answer->rfind("HTTP/1.0 200 OK\r\n", 0), 0u) << *answer;
    EXPECT_EQ(body_of(*answer), "scrape_number{channel=\"x\"} " + std::to_string(n) + "\n");
  }
  const auto missing = http_get(port_, "/");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->rfind("HTTP/1.0 404", 0), 0u);
}

// A client that connects and says nothing holds a slot until its deadline, not the listener: one
// that arrives after it is answered at once, and the stuck one is closed at its deadline.
TEST_F(ServedListener, AStuckClientDoesNotDelayOthersAndIsClosedAtItsDeadline) {
  TcpClient stuck(port_);
  ASSERT_TRUE(stuck.connected());
  TcpClient half(port_);
  ASSERT_TRUE(half.send("GET /metr"));  // half a request, never finished
  const auto start = std::chrono::steady_clock::now();
  const auto answer = http_get(port_, "/metrics");
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->rfind("HTTP/1.0 200", 0), 0u);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 800ms);  // before the stuck one's deadline
  const auto dropped = stuck.read_to_end(3s);
  ASSERT_TRUE(dropped) << "the stuck client was never closed";
  EXPECT_EQ(*dropped, "");
  EXPECT_GE(std::chrono::steady_clock::now() - start, 900ms);
  ASSERT_TRUE(half.read_to_end(3s));
}

TEST_F(ServedListener, AnOversizedRequestGets431AndGarbageGets400) {
  TcpClient big(port_);
  ASSERT_TRUE(big.send("GET /metrics HTTP/1.1\r\nX-Long: " + std::string(2000, 'a')));
  const auto too_large = big.read_to_end(3s);
  ASSERT_TRUE(too_large);
  EXPECT_EQ(too_large->rfind("HTTP/1.0 431", 0), 0u) << *too_large;

  TcpClient garbage(port_);
  ASSERT_TRUE(garbage.send(std::string("\x00\xff\x16\x03\x01\r\n\r\n", 9)));
  const auto bad = garbage.read_to_end(3s);
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->rfind("HTTP/1.0 400", 0), 0u) << *bad;

  // And the listener still answers.
  const auto answer = http_get(port_, "/metrics");
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->rfind("HTTP/1.0 200", 0), 0u);
  // Relaxed: a counter; the HTTP answer already came after the scrape that counted.
  EXPECT_EQ(scrapes_.load(std::memory_order_relaxed), 1);
}

TEST(MetricsListenerOpen, AnAddressInUseIsAnErrorNamingIt) {
  auto first = MetricsListener::open(ListenAddress{"127.0.0.1", 0});
  ASSERT_TRUE(first);
  const std::uint16_t port = port_of(first->address());
  const auto second = MetricsListener::open(ListenAddress{"127.0.0.1", port});
  ASSERT_FALSE(second);
  EXPECT_NE(second.error().message.find(std::to_string(port)), std::string::npos);
}

// --- the command --------------------------------------------------------------------------------

// `shmbus stat ARGS...` with its stderr on the pipe Child reads, so the test can read the
// "serving http://ADDR/metrics" line.
Child spawn_listening_stat(const std::vector<std::string>& args) {
  return Child::fork([args] {
    ::dup2(1, 2);
    std::vector<char*> argv{const_cast<char*>(SHMBUS_CLI), const_cast<char*>("stat")};
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(SHMBUS_CLI, argv.data());
    return 127;
  });
}

std::optional<std::uint16_t> served_port(Child& child) {
  const auto line = child.wait_for_line("shmbus stat: serving http://127.0.0.1:", 10s);
  if (!line) return std::nullopt;
  const std::string prefix = "shmbus stat: serving http://127.0.0.1:";
  return static_cast<std::uint16_t>(std::stoi(line->substr(prefix.size())));
}

double published_in(const shmbus::test::ParsedExposition& e, const std::string& channel) {
  for (const auto& s : shmbus::test::samples_named(e, "shmbus_published_messages_total")) {
    if (s.labels.at("channel") == channel) return s.value;
  }
  return -1;
}

TEST(StatListenCli, ServesAFreshWellFormedExpositionUntilSigterm) {
  ChannelGuard ch(unique_channel("listen"));
  Child pub = Child::spawn({SHMBUS_CLI, "pub", ch.name(), "--count", "3", "--quiet"});
  ASSERT_TRUE(pub.wait(10s).value_or(shmbus::test::ExitStatus{}).ok());

  Child one = spawn_listening_stat({ch.name(), "--prometheus", "--listen", "127.0.0.1:0"});
  Child all = spawn_listening_stat({"--prometheus", "--listen", "127.0.0.1:0"});
  const auto one_port = served_port(one);
  ASSERT_TRUE(one_port) << one.output();
  const auto all_port = served_port(all);
  ASSERT_TRUE(all_port) << all.output();

  const auto first = http_get(*one_port, "/metrics");
  ASSERT_TRUE(first);
  EXPECT_NE(first->find("Content-Type: text/plain; version=0.0.4"), std::string::npos);
  EXPECT_EQ(published_in(shmbus::test::parse_well_formed_exposition(body_of(*first)), ch.name()),
            3);

  Child more = Child::spawn({SHMBUS_CLI, "pub", ch.name(), "--count", "4", "--quiet"});
  ASSERT_TRUE(more.wait(10s).value_or(shmbus::test::ExitStatus{}).ok());
  const auto second = http_get(*one_port, "/metrics");
  ASSERT_TRUE(second);
  EXPECT_EQ(published_in(shmbus::test::parse_well_formed_exposition(body_of(*second)), ch.name()),
            7);
  const auto everything = http_get(*all_port, "/metrics");
  ASSERT_TRUE(everything);
  EXPECT_EQ(
      published_in(shmbus::test::parse_well_formed_exposition(body_of(*everything)), ch.name()), 7);
  const auto elsewhere = http_get(*one_port, "/favicon.ico");
  ASSERT_TRUE(elsewhere);
  EXPECT_EQ(elsewhere->rfind("HTTP/1.0 404", 0), 0u);

  for (Child* c : {&one, &all}) {
    ASSERT_EQ(::kill(c->pid(), SIGTERM), 0);
    const auto status = c->wait(5s);
    ASSERT_TRUE(status && status->ok()) << (status ? status->describe() : "still running");
  }
}

TEST(StatListenCli, AnAddressThatIsNotHostPortIsAUsageError) {
  Child bad = spawn_listening_stat({"--prometheus", "--listen", "9464"});
  const auto status = bad.wait(5s);
  ASSERT_TRUE(status);
  EXPECT_EQ(status->code, 2) << bad.output();
}

}  // namespace
