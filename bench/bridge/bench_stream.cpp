#include "bench/bridge/bench_stream.hpp"

#include <nats/nats.h>

#include <fmt/format.h>

namespace shmbus::bench {

std::string delete_bench_stream(const std::string& nats_url, const std::string& stream) {
  natsConnection* connection = nullptr;
  natsStatus s = natsConnection_ConnectTo(&connection, nats_url.c_str());
  if (s != NATS_OK) {
    return fmt::format("connecting to {} to delete stream {}: {}", nats_url, stream,
                       natsStatus_GetText(s));
  }
  std::string error;
  jsCtx* js = nullptr;
  s = natsConnection_JetStream(&js, connection, nullptr);
  if (s == NATS_OK) {
    jsErrCode code = static_cast<jsErrCode>(0);
    s = js_DeleteStream(js, stream.c_str(), nullptr, &code);
    if (s != NATS_OK && s != NATS_NOT_FOUND && code != JSStreamNotFoundErr) {
      error = fmt::format("deleting stream {}: {} (JetStream error {})", stream,
                          natsStatus_GetText(s), static_cast<int>(code));
    }
  } else {
    error = fmt::format("JetStream context for {}: {}", nats_url, natsStatus_GetText(s));
  }
  jsCtx_Destroy(js);
  natsConnection_Destroy(connection);
  return error;
}

}  // namespace shmbus::bench
