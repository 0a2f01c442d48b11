// Bridge in's apply rules (docs/bridge-design.md, "Apply"), with no NATS in them: what to do with
// one record read from the stream, and the exactly-once bookkeeping that survives a kill -9.
//
// Bridge in is the local channel's only producer (single_producer). Per record, in stream order:
//  1. it came from this host (origin == --host): never applied (no loops), counted own_skipped;
//  2. duplicate: stream sequence <= the applied one (or, when the stream was re-created, as its
//     Created time says, origin sequence <= the applied one of the same origin incarnation);
//  3. continuity: within one origin incarnation a record after applied.origin_seq + 1 means the
//     stream discarded records: exactly the missing count is laid out as lost local sequences
//     (Publisher::publish_gap), counted stream_gaps and reported; a new origin incarnation
//     expects sequence 1 (a fresh bridge in with no state takes whatever comes first);
//  4. a GAP record of n: publish_gap(n), local subscribers see lost_before = n;
//  5. data: claim (with its key and message type when it has them), copy, write the intent,
//     commit, write applied.
//
// The positions live in the bridge-in object (ipc/bridge_segment.hpp), which lives exactly as
// long as the ring it describes. Each step writes the intent first and `applied` = the same record
// last, so after a kill -9 an intent that differs from `applied` is settled by looking at the ring
// (settle(), run by open()). Its local_seq says which step it was:
//  - a data record: the local sequence it claimed. The intent is written after the claim and
//    before anything else is claimed, so it is next_sequence() - 1. That record committed means it
//    was applied (promote); pending or abandoned means not (the JetStream consumer redelivers it).
//  - a gap: the local sequence after the gap's last, written before any of it is laid out, so it
//    is >= next_sequence(). What is still missing (local_seq - next_sequence()) is laid out now.
// (A data intent is always below next_sequence(), a gap intent never is: the two cannot be
// confused.) Skips (own host, invalid) write the intent and applied with the previous local_seq.
//
// Known cost: a kill -9 between a data claim and its commit leaves one abandoned local sequence,
// and the record is applied again right after it: local subscribers count one lost sequence
// although nothing is missing (`abandoned_repaired` in `shmbus stat` counts it).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>

#include "ipc/bridge_segment.hpp"
#include "shmbus/publisher.hpp"
#include "shmbus/result.hpp"

namespace shmbus::bridge {

enum class IncomingKind : std::uint8_t { data, gap };

// One record as the stream holds it, decoded (the views stay valid during apply()).
struct IncomingRecord {
  std::uint64_t stream_seq = 0;         // JetStream's stream sequence
  std::uint64_t stream_created_ns = 0;  // when the stream was created (jsStreamInfo Created)
  std::string_view origin_host;         // Shmbus-Origin
  std::uint64_t origin_incarnation = 0;
  std::uint64_t origin_seq = 0;  // data: its sequence on the origin; gap: the first lost
  IncomingKind kind = IncomingKind::data;
  std::uint64_t gap_count = 0;      // gap: how many sequences the origin lost (>= 1)
  std::int64_t origin_time_ns = 0;  // Shmbus-Time
  std::span<const std::byte> key;   // data: Shmbus-Key (empty: none)
  std::uint16_t message_type = 0;   // data: Shmbus-Message-Type (0: none)
  std::span<const std::byte> payload;
};

enum class ApplyOutcome : std::uint8_t {
  applied,      // data committed locally, or a gap laid out
  duplicate,    // applied before: nothing done
  own_skipped,  // published on this host first: never applied
  // The local ring had no room within the claim timeout. Nothing of the record was applied (a
  // gap may be partly laid out; the rest follows): call apply() again with the same record.
  back_pressured,
};
const char* to_string(ApplyOutcome outcome) noexcept;

// The points of the protocol a test may stop the process at (ApplierOptions::step_hook).
enum class ApplyStep : std::uint8_t {
  claimed,         // data: claimed and copied, intent not yet written
  intent_written,  // data: intent written, not committed
  committed,       // data: committed, applied not yet written
  gap_intent_written,  // gap: intent written, nothing laid out
  gap_laid_out,        // gap: laid out, applied not yet written
  applied_written,     // any: applied written
};

struct ApplierOptions {
  std::string host;  // records whose origin is this host are never applied
  // How long one apply() waits for room in the local ring before it returns back_pressured.
  std::chrono::nanoseconds claim_timeout = std::chrono::milliseconds(100);
  // How long settlement waits for the ring to show a dead claim's fate (open()).
  std::chrono::nanoseconds settle_timeout = std::chrono::seconds(5);
  // One line per event worth an operator's attention (stream gaps, settlement); none when empty.
  std::function<void(std::string_view)> report;
  // Fault injection for tests: called at each ApplyStep with the local sequence involved.
  std::function<void(ApplyStep, std::uint64_t local_seq)> step_hook;
};

// What open() found left by a previous bridge in.
enum class Settlement : std::uint8_t {
  clean,         // nothing in flight
  promoted,      // the record was committed: it counts as applied
  discarded,     // the claim was never committed: the record will be applied again
  gap_finished,  // a gap was partly laid out: the rest was laid out now
};
const char* to_string(Settlement settlement) noexcept;

class InApplier {
 public:
  using Position = shmbus::detail::BridgeSegment::InPosition;

  // Settles what a killed predecessor left (see the file comment). `publisher` must be the
  // channel's single producer and `segment` its bridge-in object; both outlive the applier.
  static Result<InApplier> open(Publisher& publisher, shmbus::detail::BridgeSegment& segment,
                                ApplierOptions options);

  // Applies one record (rules 1-5). An error (a record larger than the channel's max_message, a
  // corrupt ring) stops bridge in: nothing may be dropped.
  Result<ApplyOutcome> apply(const IncomingRecord& record);

  // A stream message that is not a shmbus record (counted invalid by the caller): moves the
  // applied stream sequence past it so that it is not considered again.
  void skip(std::uint64_t stream_seq, std::uint64_t stream_created_ns);

  const Position& applied() const noexcept { return applied_; }
  Settlement settlement() const noexcept { return settlement_; }

 private:
  InApplier(Publisher& publisher, shmbus::detail::BridgeSegment& segment, ApplierOptions options)
      : publisher_(&publisher), segment_(&segment), options_(std::move(options)) {}

  Result<void> settle();
  // Lays out local sequences up to (not including) intent_.local_seq; then applied = intent.
  Result<bool> finish_gap();
  // Writes `p` (a gap ending before p.local_seq) as the intent, then lays it out. The gap belongs
  // to the record at `record_seq`; `completes_record`: it is that record (a GAP), not the lost
  // sequences before a data record.
  Result<ApplyOutcome> apply_gap(const Position& p, std::uint64_t record_seq,
                                 bool completes_record);
  Result<ApplyOutcome> apply_data(const IncomingRecord& record);
  // Stores `p` as the intent, then as applied (a step with nothing to lay out or claim).
  void advance(const Position& p);
  void write_intent(const Position& p);
  void write_applied(const Position& p);
  void hook(ApplyStep step, std::uint64_t local_seq) const {
    if (options_.step_hook) options_.step_hook(step, local_seq);
  }
  void report(const std::string& line) const {
    if (options_.report) options_.report(line);
  }

  Publisher* publisher_;
  shmbus::detail::BridgeSegment* segment_;
  ApplierOptions options_;
  Position applied_{};
  Position intent_{};
  bool gap_pending_ = false;  // intent_ is a gap not yet fully laid out
  std::uint64_t pending_record_seq_ = 0;  // the GAP record (stream sequence) it completes, if any
  Settlement settlement_ = Settlement::clean;
};

}  // namespace shmbus::bridge
