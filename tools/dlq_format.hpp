// How `shmbus dlq` prints dead letters (include/shmbus/dead_letter.hpp): one line each for ls,
// the whole letter for show. Every string of a dead letter came from another process and is
// printed escaped: nothing in it can move a terminal's cursor or break a line or a JSON object.
// Pure functions, so tests call them directly. docs/dead-letters.md lists the JSON fields.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "shmbus/dead_letter.hpp"

namespace shmbus::tools {

// Where a dead letter was found: its sequence on the dead-letter channel, and whether it was read
// from the journal (else the ring).
struct DlqPlace {
  std::uint64_t sequence = 0;
  bool from_journal = false;
};

// `text` between double quotes, \" and \\ escaped. Printable text (is_printable_text of
// tools/format.hpp: UTF-8 without control or bidirectional formatting characters) is kept as it
// is; other text has every byte outside printable ASCII escaped: \n, \t, \r, else \xNN.
//   price "missing"  ->  "price \"missing\""      a<TAB>b  ->  "a\tb"
std::string quoted(std::string_view text);

// ls's line:
//   text: seq=S original_seq=O time=<dead-lettered, ISO local> group=G attempts=N code=C size=B
//         [key=K] reason="R"
//   json: {"seq":S,"source":"ring"|"journal","channel":..,"original_seq":..,
//          "original_time_ns":..,"original_time":..,"dead_lettered_ns":..,"dead_lettered_time":..,
//          "group":..,"attempts":..,"reason_code":"rejected",..,"reason_code_value":1,
//          "reason":..,"message_type":..,"size":..[,"key_hex":..[,"key_text":..]]}
// with_payload (show --format json) adds "payload_hex" and, if printable, "payload_text".
std::string dlq_line(const DlqPlace& place, const DeadLetter& letter, bool json,
                     bool with_payload = false);

// show's text: a header line, one line per field, then the payload as a hex dump.
std::string dlq_show_text(std::string_view dlq_channel, const DlqPlace& place,
                          const DeadLetter& letter);

// `hexdump -C` style, 16 bytes a line, each line indented by `indent`:
//   00000000  7b 22 6f 72 64 65 72 22  3a 37 7d                 |{"order":7}|
std::string hex_dump(std::span<const std::byte> bytes, std::string_view indent);

}  // namespace shmbus::tools
