#include "bridge/stream_setup.hpp"

#include <fmt/format.h>

namespace shmbus::bridge {
namespace {

bool is_transient(natsStatus s) {
  return s == NATS_TIMEOUT || s == NATS_NO_RESPONDERS || s == NATS_CONNECTION_CLOSED ||
         s == NATS_CONNECTION_DISCONNECTED || s == NATS_NOT_YET_CONNECTED ||
         s == NATS_IO_ERROR || s == NATS_STALE_CONNECTION;
}

SetupFailure failure(const NatsError& e, std::string_view what) {
  return SetupFailure{is_transient(e.status), fmt::format("{}: {}", what, e.describe())};
}

std::string subjects_text(const jsStreamConfig& config) {
  std::string out = "[";
  for (int i = 0; i < config.SubjectsLen; ++i) {
    out += (i == 0 ? "" : ", ") + std::string(config.Subjects[i] ? config.Subjects[i] : "");
  }
  return out + "]";
}

}  // namespace

tl::expected<StreamFacts, SetupFailure> ensure_stream(jsCtx* js, const StreamSpec& spec) {
  StreamFacts facts;
  jsStreamInfo* raw = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  natsStatus s = js_GetStreamInfo(&raw, js, spec.stream.c_str(), nullptr, &code);
  StreamInfoPtr info(raw);
  if (s == NATS_NOT_FOUND || code == JSStreamNotFoundErr) {
    if (!spec.create) {
      return tl::unexpected(SetupFailure{
          false, fmt::format("stream '{}' does not exist (and --no-create-stream)", spec.stream)});
    }
    jsStreamConfig config;
    jsStreamConfig_Init(&config);
    const char* subjects[] = {spec.subject.c_str()};
    config.Name = spec.stream.c_str();
    config.Subjects = subjects;
    config.SubjectsLen = 1;
    config.Retention = js_LimitsPolicy;
    config.Storage = spec.storage;
    config.Discard = spec.discard;
    config.MaxBytes = spec.max_bytes;
    config.Duplicates = std::chrono::duration_cast<std::chrono::nanoseconds>(spec.duplicates).count();
    raw = nullptr;
    code = static_cast<jsErrCode>(0);
    s = js_AddStream(&raw, js, &config, nullptr, &code);
    info.reset(raw);
    if (s != NATS_OK) {
      return tl::unexpected(
          failure(nats_error(s, code), fmt::format("creating stream '{}'", spec.stream)));
    }
    facts.created = true;
  } else if (s != NATS_OK) {
    return tl::unexpected(
        failure(nats_error(s, code), fmt::format("looking up stream '{}'", spec.stream)));
  }
  const jsStreamConfig* config = info->Config;
  if (config == nullptr || config->SubjectsLen != 1 || config->Subjects == nullptr ||
      config->Subjects[0] == nullptr || spec.subject != config->Subjects[0]) {
    return tl::unexpected(SetupFailure{
        false, fmt::format("stream '{}' holds subjects {}, not exactly ['{}']: a bridge needs a "
                           "stream of its own (the chain of expected last ids is per stream)",
                           spec.stream, config ? subjects_text(*config) : "[]", spec.subject)});
  }
  facts.created_ns = info->Created;
  facts.messages = info->State.Msgs;
  facts.last_stream_seq = info->State.LastSeq;
  return facts;
}

tl::expected<std::optional<LastRecord>, SetupFailure> read_last_record(
    jsCtx* js, const std::string& stream, const std::string& subject) {
  natsMsg* raw = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  const natsStatus s = js_GetLastMsg(&raw, js, stream.c_str(), subject.c_str(), nullptr, &code);
  MsgPtr msg(raw);
  if (code == JSNoMessageFoundErr || (s == NATS_NOT_FOUND && code == 0)) {
    return std::optional<LastRecord>{};
  }
  if (s != NATS_OK) {
    return tl::unexpected(failure(
        nats_error(s, code), fmt::format("reading the last message of '{}' on '{}'", stream, subject)));
  }
  auto headers = read_headers(msg.get());
  if (!headers) {
    return tl::unexpected(SetupFailure{
        false, fmt::format("the last message of stream '{}' on '{}' was not published by a shmbus "
                           "bridge: {}",
                           stream, subject, headers.error())});
  }
  LastRecord last;
  last.headers = std::move(*headers);
  last.id = msg_id(last.headers);
  last.stream_seq = natsMsg_GetSequence(msg.get());
  return std::optional<LastRecord>(std::move(last));
}

}  // namespace shmbus::bridge
