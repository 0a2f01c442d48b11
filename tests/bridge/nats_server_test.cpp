// The bridge tests' nats-server (tests/support/nats_server.hpp): it starts on a free port,
// comes back on the same port with the same store after kill -9, answers nothing while stopped,
// takes a storage limit, and leaves nothing behind.
#include "tests/support/nats_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <optional>
#include <string>

#include <gtest/gtest.h>

namespace shmbus::test {
namespace {

// Connects to 127.0.0.1:port and returns the first line the server says (NATS servers greet
// every client with "INFO {...}"), or nothing within `timeout`.
std::optional<std::string> greeting(int port, std::chrono::milliseconds timeout) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::nullopt;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::optional<std::string> line;
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0) {
    std::string got;
    pollfd p{fd, POLLIN, 0};
    while (got.find('\n') == std::string::npos &&
           ::poll(&p, 1, static_cast<int>(timeout.count())) == 1) {
      char buf[512];
      const ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0) break;
      got.append(buf, static_cast<std::size_t>(n));
    }
    if (got.find('\n') != std::string::npos) line = got.substr(0, got.find('\n'));
  }
  ::close(fd);
  return line;
}

TEST(NatsServer, StartsRestartsOnTheSamePortStopsAndCleansUp) {
  std::string store;
  pid_t first_pid = -1;
  {
    NatsServer server;
    ASSERT_GT(server.port(), 0);
    EXPECT_EQ(server.url(), "nats://127.0.0.1:" + std::to_string(server.port()));
    auto hello = greeting(server.port(), std::chrono::seconds(5));
    ASSERT_TRUE(hello) << server.log();
    EXPECT_TRUE(hello->starts_with("INFO ")) << *hello;
    EXPECT_NE(hello->find("\"jetstream\":true"), std::string::npos) << *hello;
    store = server.store_dir();
    EXPECT_TRUE(std::filesystem::exists(store + "/jetstream")) << server.log();

    // kill -9, then nobody listens; the restart takes the same port and the same store.
    first_pid = server.pid();
    const int port = server.port();
    server.kill9();
    EXPECT_FALSE(server.running());
    EXPECT_FALSE(greeting(port, std::chrono::milliseconds(500)));
    server.restart();
    EXPECT_NE(server.pid(), first_pid);
    EXPECT_EQ(server.port(), port);
    EXPECT_EQ(server.store_dir(), store);
    EXPECT_TRUE(greeting(port, std::chrono::seconds(5))) << server.log();

    // Stopped, it accepts (the kernel does) but says nothing; continued, it greets again.
    server.stop();
    EXPECT_FALSE(greeting(port, std::chrono::milliseconds(300)));
    server.cont();
    EXPECT_TRUE(greeting(port, std::chrono::seconds(5))) << server.log();

    // A storage limit goes to the server's configuration.
    server.restart(NatsServerOptions{.max_file_store = "3MB"});
    EXPECT_EQ(server.port(), port);
    EXPECT_NE(server.log().find("Max Storage:     3.00 MB"), std::string::npos) << server.log();

    server.stop();  // the destructor kills a stopped server too
  }
  EXPECT_EQ(::kill(first_pid, 0), -1);
  EXPECT_FALSE(std::filesystem::exists(store));
}

TEST(NatsServer, TerminateEndsItCleanly) {
  NatsServer server;
  server.terminate();
  EXPECT_FALSE(server.running());
  server.restart();
  EXPECT_TRUE(server.running());
}

}  // namespace
}  // namespace shmbus::test
