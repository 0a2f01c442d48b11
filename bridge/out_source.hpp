// Bridge out's ordered source: exactly the sequences next, next + 1, ... of a channel, each once,
// as records to publish. No NATS in it (tests/bridge/out_source_test.cpp runs it alone).
//
// Records come from the bridge's named subscriber. One with a sequence below `next` is already in
// the stream: skipped. One above `next` (the subscriber was lapped or evicted, claims were
// abandoned, the ring no longer held where it resumed) leaves [next, its sequence) to fill: from
// the channel's journal when it is the channel's (same incarnation), data records as data, gap
// records as GAPs; what the journal cannot give becomes ONE GAP record with the exact range, a
// notice and the gap counters. Never a silent skip.
//
// Not a hot path: the journal reader allocates, and a record held across a fill is copied.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "bridge/record_headers.hpp"
#include "shmbus/journal_reader.hpp"
#include "shmbus/subscriber.hpp"

namespace shmbus::bridge {

struct OutRecord {
  enum class From : std::uint8_t { ring, journal, lost };
  RecordKind kind = RecordKind::data;
  std::uint64_t sequence = 0;    // data: its sequence; gap: the first lost one
  std::uint64_t count = 1;       // gap: how many
  std::int64_t time_ns = 0;      // data: publish time; gap: when the loss was seen
  std::span<const std::byte> payload;  // valid until the next call to next()
  std::span<const std::byte> key;
  std::uint16_t message_type = 0;
  From from = From::ring;
  // Released once this record is in the stream: everything up to here may then be overwritten.
  Subscriber::Cursor release{};

  std::uint64_t last_sequence() const noexcept { return sequence + count - 1; }
};

struct OutSourceOptions {
  std::uint64_t next = 1;       // the first sequence to yield
  std::string journal_dir;      // "" = the channel's current or last journaler's directory
  // Told of each GAP the source makes and why ("sequences 5-9: the journal ...") and of journal
  // problems; the bridge prints them. May be empty.
  std::function<void(const std::string&)> notice;
};

class OutSource {
 public:
  // `subscriber` must outlive the source.
  OutSource(Subscriber& subscriber, OutSourceOptions options);

  enum class Status : std::uint8_t {
    record,  // `out` holds the next record
    idle,    // nothing new: wait on the subscriber
    failed,  // the subscriber cannot go on (evicted, corrupt ring): last_error() says why
  };
  Status next(OutRecord& out);
  const std::string& last_error() const noexcept { return error_; }

  // The sequence the next record begins at.
  std::uint64_t next_sequence() const noexcept { return next_; }
  // Goes back to `sequence` (< next_sequence()): the stream lost records it had acknowledged.
  // What the subscriber has already passed is filled from the journal, else as a GAP.
  void rewind(std::uint64_t sequence);

  std::uint64_t gaps() const noexcept { return gaps_; }
  std::uint64_t gap_sequences() const noexcept { return gap_sequences_; }
  std::uint64_t from_journal() const noexcept { return from_journal_; }

 private:
  bool fill_next(OutRecord& out);  // one record of [next_, fill_end_); false when none
  void make_gap(OutRecord& out, std::uint64_t end, const std::string& why);
  bool open_journal(std::string& why);
  void tell(const std::string& text);

  Subscriber& subscriber_;
  OutSourceOptions options_;
  std::uint64_t next_;
  std::string error_;

  // A ring record received ahead of next_, held (copied) while [next_, fill_end_) is filled.
  bool holding_ = false;
  std::uint64_t fill_end_ = 0;  // while filling: the first sequence the fill does not cover
  bool filling_ = false;
  OutRecord held_;
  std::vector<std::byte> held_payload_;
  std::vector<std::byte> held_key_;
  Subscriber::Cursor before_held_{};  // the subscriber's cursor before the held record

  std::optional<journal::JournalReader> journal_;
  bool journal_seek_ = true;  // seek to next_ before reading
  bool journal_refused_ = false;  // not the channel's, or none: not asked again for this fill

  std::uint64_t gaps_ = 0;
  std::uint64_t gap_sequences_ = 0;
  std::uint64_t from_journal_ = 0;
};

}  // namespace shmbus::bridge
