// Owning handles for libnats' objects, and the error a libnats call reports.
//
// The bridges (bridge/bridge_out.cpp, bridge/bridge_in.cpp) are not on any application's hot path:
// they are processes (or threads) of their own between a channel and a NATS server, and libnats
// allocates for every message it sends or receives. Nothing here is meant for a publish or poll
// path.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <nats/nats.h>
#include <tl/expected.hpp>

#include "shmbus/result.hpp"

namespace shmbus::bridge {

// What a libnats call said: its status, the JetStream error code when the server answered with
// one (0 otherwise) and the text that goes with them.
struct NatsError {
  natsStatus status = NATS_ERR;
  jsErrCode js_code = static_cast<jsErrCode>(0);
  std::string text;

  // "nats: insufficient resources (JetStream 10023)", or "nats: timeout" without a code.
  std::string describe() const;
  bool is(jsErrCode code) const noexcept { return js_code == code; }
};

template <class T>
using NatsResult = tl::expected<T, NatsError>;

// The error of a call that returned `status` (and `js_code`). Without `text`, the calling
// thread's last libnats error text (nats_GetLastError), else the status's own text.
NatsError nats_error(natsStatus status, jsErrCode js_code = static_cast<jsErrCode>(0),
                     const char* text = nullptr);

// The shmbus error for an operator: "<context>: nats: ... (JetStream N)".
Error to_error(const NatsError& error, std::string_view context);

namespace detail {
struct OptionsDelete { void operator()(natsOptions* p) const noexcept { natsOptions_Destroy(p); } };
struct ConnectionDelete {
  void operator()(natsConnection* p) const noexcept { natsConnection_Destroy(p); }
};
struct JsDelete { void operator()(jsCtx* p) const noexcept { jsCtx_Destroy(p); } };
struct MsgDelete { void operator()(natsMsg* p) const noexcept { natsMsg_Destroy(p); } };
struct SubscriptionDelete {
  void operator()(natsSubscription* p) const noexcept { natsSubscription_Destroy(p); }
};
struct StreamInfoDelete {
  void operator()(jsStreamInfo* p) const noexcept { jsStreamInfo_Destroy(p); }
};
struct MetaDataDelete {
  void operator()(jsMsgMetaData* p) const noexcept { jsMsgMetaData_Destroy(p); }
};
struct ConsumerInfoDelete {
  void operator()(jsConsumerInfo* p) const noexcept { jsConsumerInfo_Destroy(p); }
};
}  // namespace detail

using OptionsPtr = std::unique_ptr<natsOptions, detail::OptionsDelete>;
using ConnectionPtr = std::unique_ptr<natsConnection, detail::ConnectionDelete>;
using JsPtr = std::unique_ptr<jsCtx, detail::JsDelete>;
using MsgPtr = std::unique_ptr<natsMsg, detail::MsgDelete>;
using SubscriptionPtr = std::unique_ptr<natsSubscription, detail::SubscriptionDelete>;
using StreamInfoPtr = std::unique_ptr<jsStreamInfo, detail::StreamInfoDelete>;
using MetaDataPtr = std::unique_ptr<jsMsgMetaData, detail::MetaDataDelete>;
using ConsumerInfoPtr = std::unique_ptr<jsConsumerInfo, detail::ConsumerInfoDelete>;

// A fetched batch (natsSubscription_Fetch fills it); destroys the messages still in it.
class MsgList {
 public:
  MsgList() = default;
  MsgList(const MsgList&) = delete;
  MsgList& operator=(const MsgList&) = delete;
  ~MsgList() { natsMsgList_Destroy(&list_); }
  natsMsgList* get() noexcept { return &list_; }
  int size() const noexcept { return list_.Count; }
  natsMsg* operator[](int i) const noexcept { return list_.Msgs[i]; }
  void clear() noexcept { natsMsgList_Destroy(&list_); list_ = natsMsgList{}; }

 private:
  natsMsgList list_{};
};

// How to reach the server. Callbacks run on libnats' own threads; `closure` is passed to each.
struct ConnectSettings {
  std::string url;                          // "nats://127.0.0.1:4222" (a comma list is allowed)
  std::string name;                         // the connection's name, shown by the server
  std::int64_t reconnect_wait_ms = 100;     // between attempts
  natsConnectionHandler on_connected = nullptr;     // a background connect succeeded
  natsConnectionHandler on_disconnected = nullptr;
  natsConnectionHandler on_reconnected = nullptr;
  void* closure = nullptr;
};

// Connects with reconnect forever (natsOptions_SetMaxReconnect -1) and retry on a failed first
// connect: the bridge may start before the server. With settings.on_connected set, a server not
// reachable yet is not an error: the connection comes back not yet connected and libnats keeps
// trying in the background (on_connected tells when it succeeds). Errors: a malformed URL, no
// memory.
NatsResult<ConnectionPtr> connect(const ConnectSettings& settings);

// A JetStream context over `connection`, with `options` (jsOptions_Init'ed by the caller, who sets
// what it needs, e.g. PublishAsync). libnats copies what it keeps.
NatsResult<JsPtr> jetstream(natsConnection* connection, jsOptions* options);

// Opens libnats' global state. Connecting does it too, but a message created before any
// connection needs it: natsMsg_Destroy without it dereferences libnats' unset garbage collector.
NatsResult<void> open_library();

// Releases libnats' global state (its threads, timers) so that a process exits with nothing
// leaked; waits up to `wait_ms` for its threads. Call once, after every handle is destroyed.
void close_library(std::int64_t wait_ms = 2000) noexcept;

}  // namespace shmbus::bridge
