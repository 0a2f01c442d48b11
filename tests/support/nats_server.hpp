// A real nats-server with JetStream for the bridge tests: `nats-server -js -a 127.0.0.1 -p -1
// -sd <temporary dir>` (the binary CMake found, compiled in as SHMBUS_NATS_SERVER), its port read
// from its log. A test can kill it (-9) and start it again on the same port with the same store,
// stop and continue it (SIGSTOP/SIGCONT), or restart it with another JetStream storage limit.
//
// A missing nats-server is an error, not a reason to skip: scripts/setup.sh installs it. Every
// wait is bounded; the destructor kills the server and removes its directory. No libnats here:
// this library is linked into every test program.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>

#include "tests/support/journal_files.hpp"
#include "tests/support/process.hpp"

namespace shmbus::test {

struct NatsServerOptions {
  // JetStream's `max_file_store` (e.g. "3MB"), written to a configuration file; empty: the
  // server's own limit (a share of the free disk space).
  std::string max_file_store;
};

class NatsServer {
 public:
  // Starts the server and waits (up to 15 s) until it is ready; throws std::runtime_error saying
  // why it could not (no binary, it exited, no port in its log), with its log.
  explicit NatsServer(NatsServerOptions options = {});
  ~NatsServer();
  NatsServer(const NatsServer&) = delete;
  NatsServer& operator=(const NatsServer&) = delete;

  // "nats://127.0.0.1:PORT"; the same across restarts.
  const std::string& url() const { return url_; }
  int port() const { return port_; }
  pid_t pid() const { return process_.pid(); }
  // The store directory (-sd), kept across restarts.
  const std::string& store_dir() const { return store_dir_; }

  // SIGKILL and reap (a stopped server too). Nothing if it is not running.
  void kill9();
  // SIGTERM, then SIGKILL if it has not exited within `grace`.
  void terminate(std::chrono::milliseconds grace = std::chrono::seconds(5));
  // Starts it again on the same port with the same store (killing it first if it still runs),
  // with `options` from now on; waits until it is ready, as the constructor does.
  void restart();
  void restart(NatsServerOptions options);
  // SIGSTOP / SIGCONT: the server keeps its connections but answers nothing while stopped.
  void stop();
  void cont();
  bool running();

  // The log of the current (or last) run, for failure messages.
  std::string log() const;

 private:
  void launch();

  NatsServerOptions options_;
  TempDir dir_{"nats"};    // the store, the configuration file and one log per run
  std::string store_dir_;
  std::string log_path_;
  std::string url_;
  int port_ = -1;          // -1 until the first start has read it from the log
  int runs_ = 0;
  bool stopped_ = false;
  Child process_;
};

}  // namespace shmbus::test
