// The nats-server `shmbus bench bridge` starts when it is not given a server (--nats): `nats-server
// -js -a 127.0.0.1 -p -1 -sd <temporary dir>`, its log in that directory, its port read from the
// log line "Listening for client connections on 127.0.0.1:PORT". The destructor stops it (SIGTERM,
// then SIGKILL after 5 s) and removes the directory with the streams it stored.
//
//   auto server = BenchNatsServer::start();
//   if (!server) return tl::unexpected(server.error());
//   run_against((*server)->url());
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

#include <tl/expected.hpp>

namespace shmbus::bench {

class BenchNatsServer {
 public:
  // `binary` empty: nats-server on PATH, else /usr/sbin/nats-server (Debian's place for it), else
  // /usr/bin/nats-server. Waits up to 15 s for the port; the error says why it could not start,
  // with the server's log.
  static tl::expected<std::unique_ptr<BenchNatsServer>, std::string> start(
      const std::string& binary = {});

  ~BenchNatsServer();
  BenchNatsServer(const BenchNatsServer&) = delete;
  BenchNatsServer& operator=(const BenchNatsServer&) = delete;

  const std::string& url() const { return url_; }  // "nats://127.0.0.1:PORT"

 private:
  BenchNatsServer() = default;
  pid_t pid_ = -1;
  std::string dir_;
  std::string url_;
};

// The nats-server binary `start` would run, or empty when there is none.
std::string find_nats_server();

}  // namespace shmbus::bench
