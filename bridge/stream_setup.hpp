// The JetStream stream a bridge out writes: made when missing, checked when present, and its last
// record read back (where a restarted bridge resumes, and what recovery compares with).
//
// One stream per bridged channel, holding exactly one subject: Nats-Expected-Last-Msg-Id, which
// chains every record to the one before it, is checked per stream, so a stream shared with other
// subjects would break the chain (docs/bridge-design.md, "The chain").
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "bridge/nats_handles.hpp"
#include "bridge/record_headers.hpp"

namespace shmbus::bridge {

struct StreamSpec {
  std::string stream;
  std::string subject;
  bool create = true;            // create it when missing (else a missing stream is an error)
  std::int64_t max_bytes = -1;   // creation only: -1 = unlimited
  jsDiscardPolicy discard = js_DiscardOld;  // creation only
  jsStorageType storage = js_FileStorage;   // creation only
  std::chrono::seconds duplicates{120};     // creation only: the duplicate window
};

// What ensure_stream found or made.
struct StreamFacts {
  bool created = false;
  std::int64_t created_ns = 0;  // the stream's creation time (changes when it is re-created)
  std::uint64_t messages = 0;
  std::uint64_t last_stream_seq = 0;
};

// Looks the stream up; creates it (Limits retention, spec's storage, discard, max bytes and
// duplicate window) when missing and spec.create; refuses one whose subjects are not exactly
// [spec.subject]. NatsError on a transport failure (retry), else an Error naming the problem.
struct SetupFailure {
  bool transient = false;  // the server did not answer (timeout, not connected): try again
  std::string text;
};
tl::expected<StreamFacts, SetupFailure> ensure_stream(jsCtx* js, const StreamSpec& spec);

// The stream's last record on `subject`, decoded: nullopt when the subject holds nothing.
// A last message that is not a shmbus record (its headers do not decode) is a non-transient
// failure naming why.
struct LastRecord {
  RecordHeaders headers;
  std::string id;  // its Nats-Msg-Id
  std::uint64_t stream_seq = 0;
};
tl::expected<std::optional<LastRecord>, SetupFailure> read_last_record(jsCtx* js,
                                                                       const std::string& stream,
                                                                       const std::string& subject);

}  // namespace shmbus::bridge
