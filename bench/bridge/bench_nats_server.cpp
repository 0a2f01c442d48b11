#include "bench/bridge/bench_nats_server.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string_view>
#include <thread>
#include <vector>

#include <fmt/format.h>

extern char** environ;

namespace shmbus::bench {

namespace {

namespace fs = std::filesystem;

constexpr std::string_view kListening = "Listening for client connections on 127.0.0.1:";

bool is_executable(const fs::path& path) { return ::access(path.c_str(), X_OK) == 0; }

std::string read_whole(const fs::path& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// The port of the log's "Listening for client connections" line; 0 while there is none.
int port_in_log(const std::string& log) {
  const std::size_t at = log.find(kListening);
  if (at == std::string::npos) return 0;
  const std::size_t digits = at + kListening.size();
  const std::size_t end = log.find_first_not_of("0123456789", digits);
  if (end == std::string::npos || end == digits || end - digits > 5) return 0;  // line not done
  const int port = std::atoi(log.substr(digits, end - digits).c_str());
  return port > 0 && port < 65536 ? port : 0;
}

// SIGTERM, then SIGKILL if it has not exited within 5 s; reaps it.
void stop_server(pid_t pid) {
  ::kill(pid, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::chrono::steady_clock::now() < deadline) {
    if (::waitpid(pid, nullptr, WNOHANG) == pid) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
}

}  // namespace

std::string find_nats_server() {
  if (const char* path = std::getenv("PATH")) {
    std::string_view rest = path;
    while (!rest.empty()) {
      const std::size_t colon = rest.find(':');
      const std::string_view dir = rest.substr(0, colon);
      if (!dir.empty() && is_executable(fs::path(dir) / "nats-server")) {
        return (fs::path(dir) / "nats-server").string();
      }
      if (colon == std::string_view::npos) break;
      rest.remove_prefix(colon + 1);
    }
  }
  for (const char* candidate : {"/usr/sbin/nats-server", "/usr/bin/nats-server"}) {
    if (is_executable(candidate)) return candidate;
  }
  return {};
}

tl::expected<std::unique_ptr<BenchNatsServer>, std::string> BenchNatsServer::start(
    const std::string& binary) {
  const std::string program = binary.empty() ? find_nats_server() : binary;
  if (program.empty()) {
    return tl::unexpected(std::string(
        "no nats-server on PATH, in /usr/sbin or /usr/bin (scripts/setup.sh installs it), and "
        "no --nats URL given"));
  }
  std::string dir_template = (fs::temp_directory_path() / "shmbus-bench-nats-XXXXXX").string();
  if (::mkdtemp(dir_template.data()) == nullptr) {
    return tl::unexpected(fmt::format("mkdtemp {}: {}", dir_template, std::strerror(errno)));
  }
  std::unique_ptr<BenchNatsServer> server(new BenchNatsServer);
  server->dir_ = dir_template;
  const std::string store = (fs::path(server->dir_) / "store").string();
  const std::string log_path = (fs::path(server->dir_) / "server.log").string();

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  std::vector<std::string> args{program, "-js", "-a", "127.0.0.1", "-p", "-1", "-sd", store};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  const int spawned = ::posix_spawn(&pid, program.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) {
    return tl::unexpected(fmt::format("starting {}: {}", program, std::strerror(spawned)));
  }
  server->pid_ = pid;

  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (true) {
    const std::string log = read_whole(log_path);
    if (const int port = port_in_log(log); port != 0) {
      server->url_ = fmt::format("nats://127.0.0.1:{}", port);
      return server;
    }
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      server->pid_ = -1;
      return tl::unexpected(fmt::format("{} exited before it listened; its log:\n{}", program, log));
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return tl::unexpected(fmt::format(
          "{} did not report its client port within 15 s; its log:\n{}", program, log));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

BenchNatsServer::~BenchNatsServer() {
  if (pid_ > 0) stop_server(pid_);
  std::error_code ignored;
  if (!dir_.empty()) fs::remove_all(dir_, ignored);
}

}  // namespace shmbus::bench
