#include "bridge/nats_handles.hpp"

#include <fmt/format.h>

namespace shmbus::bridge {

std::string NatsError::describe() const {
  std::string out = "nats: " + (text.empty() ? std::string(natsStatus_GetText(status)) : text);
  if (js_code != 0) out += fmt::format(" (JetStream {})", static_cast<int>(js_code));
  return out;
}

NatsError nats_error(natsStatus status, jsErrCode js_code, const char* text) {
  NatsError e;
  e.status = status;
  e.js_code = js_code;
  if (text != nullptr && *text != '\0') {
    e.text = text;
  } else {
    // The thread-local text of the failed call is more precise ("no responders available for
    // request", the server's JetStream description), when it is about this status.
    natsStatus last = NATS_OK;
    const char* last_text = nats_GetLastError(&last);
    if (last == status && last_text != nullptr && *last_text != '\0') {
      e.text = last_text;
    } else {
      e.text = natsStatus_GetText(status);
    }
  }
  return e;
}

Error to_error(const NatsError& error, std::string_view context) {
  const ErrorCode code = error.status == NATS_TIMEOUT ? ErrorCode::timed_out : ErrorCode::system;
  return Error{code, fmt::format("{}: {}", context, error.describe())};
}

NatsResult<ConnectionPtr> connect(const ConnectSettings& settings) {
  natsOptions* raw = nullptr;
  natsStatus s = natsOptions_Create(&raw);
  if (s != NATS_OK) return tl::unexpected(nats_error(s));
  OptionsPtr options(raw);
  if ((s = natsOptions_SetURL(raw, settings.url.c_str())) != NATS_OK ||
      (!settings.name.empty() && (s = natsOptions_SetName(raw, settings.name.c_str())) != NATS_OK) ||
      (s = natsOptions_SetMaxReconnect(raw, -1)) != NATS_OK ||
      (s = natsOptions_SetReconnectWait(raw, settings.reconnect_wait_ms)) != NATS_OK ||
      (s = natsOptions_SetRetryOnFailedConnect(raw, true, settings.on_connected,
                                               settings.closure)) != NATS_OK ||
      (settings.on_disconnected != nullptr &&
       (s = natsOptions_SetDisconnectedCB(raw, settings.on_disconnected, settings.closure)) !=
           NATS_OK) ||
      (settings.on_reconnected != nullptr &&
       (s = natsOptions_SetReconnectedCB(raw, settings.on_reconnected, settings.closure)) !=
           NATS_OK)) {
    return tl::unexpected(nats_error(s, static_cast<jsErrCode>(0),
                                     fmt::format("invalid connection options for '{}': {}",
                                                 settings.url, natsStatus_GetText(s))
                                         .c_str()));
  }
  natsConnection* connection = nullptr;
  s = natsConnection_Connect(&connection, raw);
  // With on_connected set, NATS_NOT_YET_CONNECTED hands back a connection that keeps trying.
  if (s == NATS_OK || (s == NATS_NOT_YET_CONNECTED && connection != nullptr)) {
    return ConnectionPtr(connection);
  }
  return tl::unexpected(nats_error(s));
}

NatsResult<JsPtr> jetstream(natsConnection* connection, jsOptions* options) {
  jsCtx* js = nullptr;
  const natsStatus s = natsConnection_JetStream(&js, connection, options);
  if (s != NATS_OK) return tl::unexpected(nats_error(s));
  return JsPtr(js);
}

NatsResult<void> open_library() {
  const natsStatus s = nats_Open(-1);
  if (s != NATS_OK) return tl::unexpected(nats_error(s));
  return {};
}

void close_library(std::int64_t wait_ms) noexcept { nats_CloseAndWait(wait_ms); }

}  // namespace shmbus::bridge
