// The NATS headers that carry a shmbus record through a JetStream stream (the wire format of
// docs/bridge-design.md): one NATS message per record, its payload byte for byte, and
//
//   header              data record                       GAP record
//   Nats-Msg-Id         <incarnation 16 hex>:<sequence>   <incarnation>:<first>-<last>
//   Shmbus-Type         data                              gap
//   Shmbus-Seq          the sequence                      the first lost sequence
//   Shmbus-Count        (absent)                          sequences lost, >= 1
//   Shmbus-Time         publish time, ns since the epoch  when the loss was seen
//   Shmbus-Origin       host the record was first published on, [A-Za-z0-9._-]{1,64}
//   Shmbus-Incarnation  the channel incarnation, 16 lowercase hex, non-zero
//   Shmbus-Key          tagged records: the key in lowercase hex (1 to 256 bytes)
//   Shmbus-Message-Type tagged records: the message type, 1 to 65535
//
// Decoding is strict: every value must be exactly what encode() writes (canonical decimal, no
// sign, space or leading zero, lowercase hex), a header a record kind does not use must be absent,
// a header may appear once, and Nats-Msg-Id must agree with the others. Whatever fails is refused
// with a reason naming the header, so bridge in never applies a message it cannot account for.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nats/nats.h>
#include <tl/expected.hpp>

namespace shmbus::bridge {

inline constexpr std::string_view kHeaderMsgId = "Nats-Msg-Id";
inline constexpr std::string_view kHeaderType = "Shmbus-Type";
inline constexpr std::string_view kHeaderSeq = "Shmbus-Seq";
inline constexpr std::string_view kHeaderCount = "Shmbus-Count";
inline constexpr std::string_view kHeaderTime = "Shmbus-Time";
inline constexpr std::string_view kHeaderOrigin = "Shmbus-Origin";
inline constexpr std::string_view kHeaderIncarnation = "Shmbus-Incarnation";
inline constexpr std::string_view kHeaderKey = "Shmbus-Key";
inline constexpr std::string_view kHeaderMessageType = "Shmbus-Message-Type";

inline constexpr std::size_t kMaxHostLength = 64;
inline constexpr std::size_t kMaxKeyBytes = 256;  // kMaxKeyLength of include/shmbus/publisher.hpp

enum class RecordKind : std::uint8_t { data, gap };

struct RecordHeaders {
  RecordKind kind = RecordKind::data;
  std::uint64_t incarnation = 0;  // the origin channel's incarnation, non-zero
  std::uint64_t sequence = 0;     // data: its sequence; gap: the first lost one; >= 1
  std::uint64_t count = 1;        // data: 1; gap: sequences lost, >= 1
  std::int64_t time_ns = 0;       // data: publish time; gap: when the loss was seen
  std::string origin;             // the host the record was first published on
  std::string key;                // data: the record's key bytes, empty when it has none
  std::uint16_t message_type = 0; // data: the record's message type, 0 when none

  std::uint64_t last_sequence() const noexcept { return sequence + count - 1; }
  bool operator==(const RecordHeaders&) const = default;
};

// "0123456789abcdef:42" (data) and "0123456789abcdef:42-57" (a GAP of 42..57).
std::string data_msg_id(std::uint64_t incarnation, std::uint64_t sequence);
std::string gap_msg_id(std::uint64_t incarnation, std::uint64_t first, std::uint64_t last);
// The Nats-Msg-Id of `headers`' record.
std::string msg_id(const RecordHeaders& headers);

// What a Nats-Msg-Id names: an incarnation and a range of sequences (first == last for data).
struct MsgIdParts {
  std::uint64_t incarnation = 0;
  std::uint64_t first = 0;
  std::uint64_t last = 0;
  bool gap = false;
};
// Strict as decode(); the reason names what is wrong.
tl::expected<MsgIdParts, std::string> parse_msg_id(std::string_view id);

// A host name fit for Shmbus-Origin: [A-Za-z0-9._-]{1,64}. nullopt when it is; else the reason.
std::optional<std::string> host_problem(std::string_view host);

// Every header of the record but Nats-Msg-Id (which the publish options carry: jsPubOptions.MsgId),
// in a fixed order. Refuses (with the reason) headers that decode() would refuse.
tl::expected<std::vector<std::pair<std::string_view, std::string>>, std::string> encode(
    const RecordHeaders& headers);

// One header as the message holds it: absent, exactly one value, or several values.
struct HeaderValue {
  enum class Presence : std::uint8_t { absent, one, several } presence = Presence::absent;
  std::string_view value;
};
using HeaderLookup = std::function<HeaderValue(std::string_view name)>;

// The record the headers describe, or why they do not describe one ("Shmbus-Seq: '007' is not
// a canonical decimal number").
tl::expected<RecordHeaders, std::string> decode(const HeaderLookup& lookup);

// The adapters to libnats messages. set_headers: every header of encode() (not Nats-Msg-Id);
// an error text when encode refuses or libnats fails. read_headers: decode() over the message.
tl::expected<void, std::string> set_headers(natsMsg* msg, const RecordHeaders& headers);
tl::expected<RecordHeaders, std::string> read_headers(natsMsg* msg);

}  // namespace shmbus::bridge
