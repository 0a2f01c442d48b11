#include "tests/support/nats_server.hpp"

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#ifndef SHMBUS_NATS_SERVER
#define SHMBUS_NATS_SERVER ""
#endif

namespace shmbus::test {
namespace {

using Clock = std::chrono::steady_clock;

constexpr auto kReadyTimeout = std::chrono::seconds(15);
constexpr std::string_view kListening = "Listening for client connections on 127.0.0.1:";
constexpr std::string_view kReady = "Server is ready";

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// The port of "Listening for client connections on 127.0.0.1:PORT", or -1.
int port_in_log(const std::string& log) {
  const auto at = log.find(kListening);
  if (at == std::string::npos) return -1;
  int port = 0;
  std::size_t i = at + kListening.size();
  for (; i < log.size() && log[i] >= '0' && log[i] <= '9'; ++i) port = port * 10 + (log[i] - '0');
  return i == at + kListening.size() || port <= 0 || port > 65535 ? -1 : port;
}

}  // namespace

NatsServer::NatsServer(NatsServerOptions options) : options_(std::move(options)) {
  store_dir_ = dir_.file("store");
  launch();
}

NatsServer::~NatsServer() { kill9(); }

void NatsServer::launch() {
  const std::string binary = SHMBUS_NATS_SERVER;
  if (binary.empty()) {
    throw std::runtime_error(
        "nats-server was not found when the build was configured (CMake's find_program); "
        "scripts/setup.sh installs it: apt-get install -y nats-server, then reconfigure");
  }
  log_path_ = dir_.file("log." + std::to_string(runs_++));
  std::vector<std::string> argv{binary, "-js", "-a", "127.0.0.1",
                                "-p", port_ < 0 ? "-1" : std::to_string(port_),
                                "-sd", store_dir_, "-l", log_path_};
  if (!options_.max_file_store.empty()) {
    const std::string config = dir_.file("server.conf");
    std::ofstream(config, std::ios::trunc)
        << "jetstream {\n  max_file_store: " << options_.max_file_store << "\n}\n";
    argv.insert(argv.end(), {"-c", config});
  }
  process_ = Child::spawn(argv);
  stopped_ = false;

  const auto deadline = Clock::now() + kReadyTimeout;
  for (;;) {
    const std::string text = read_file(log_path_);
    const int port = port_in_log(text);
    if (port > 0 && text.find(kReady) != std::string::npos) {
      if (port_ >= 0 && port != port_) {
        throw std::runtime_error("nats-server restarted on port " + std::to_string(port) +
                                 ", not " + std::to_string(port_) + "; its log:\n" + text);
      }
      port_ = port;
      url_ = "nats://127.0.0.1:" + std::to_string(port_);
      return;
    }
    if (!process_.running()) {
      throw std::runtime_error("nats-server exited before it was ready (" +
                               process_.wait(std::chrono::milliseconds(0))->describe() +
                               "); its log:\n" + text);
    }
    if (Clock::now() >= deadline) {
      process_.kill_hard();
      throw std::runtime_error("nats-server was not ready after 15 s; its log:\n" + text);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

void NatsServer::kill9() {
  process_.kill_hard();
  stopped_ = false;
}

void NatsServer::terminate(std::chrono::milliseconds grace) {
  if (!process_.running()) return;
  if (stopped_) cont();
  ::kill(process_.pid(), SIGTERM);
  if (!process_.wait(grace)) process_.kill_hard();
}

void NatsServer::restart() {
  kill9();
  launch();
}

void NatsServer::restart(NatsServerOptions options) {
  kill9();
  options_ = std::move(options);
  launch();
}

namespace {
// Whether every thread of `pid` is in the stopped state ('T' in /proc/<pid>/task/<tid>/stat).
bool all_threads_stopped(pid_t pid) {
  std::error_code ec;
  const std::string tasks = "/proc/" + std::to_string(pid) + "/task";
  for (const auto& task : std::filesystem::directory_iterator(tasks, ec)) {
    const std::string stat = read_file(task.path().string() + "/stat");
    const auto close = stat.rfind(')');  // the command name may hold spaces and parentheses
    if (close == std::string::npos || close + 2 >= stat.size()) return false;
    if (stat[close + 2] != 'T' && stat[close + 2] != 't') return false;
  }
  return !ec;
}
}  // namespace

void NatsServer::stop() {
  if (!process_.running() || ::kill(process_.pid(), SIGSTOP) != 0) return;
  stopped_ = true;
  // SIGSTOP reaches the server's threads asynchronously: until they are all stopped, one may
  // still answer. Bounded, like every wait here.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!all_threads_stopped(process_.pid()) && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void NatsServer::cont() {
  if (process_.running() && ::kill(process_.pid(), SIGCONT) == 0) stopped_ = false;
}

bool NatsServer::running() { return process_.running(); }

std::string NatsServer::log() const { return read_file(log_path_); }

}  // namespace shmbus::test
