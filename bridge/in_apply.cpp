#include "bridge/in_apply.hpp"

#include <cstring>
#include <optional>
#include <string>
#include <thread>

#include <fmt/format.h>

#include "shmbus/subscriber.hpp"

namespace shmbus::bridge {
namespace {

using Clock = std::chrono::steady_clock;

// Whether local sequence `seq` holds a committed record (true) or a claim that was abandoned or
// never committed (false), read the way any subscriber reads it: a drop subscriber started at
// `seq` either delivers that record or moves past it. A pending claim (its producer died between
// claim and commit) is repaired after the subscriber's abandon timeout, which can be tiny here:
// the caller holds the channel's single-producer ownership, so no live producer owns a claim.
Result<bool> committed_at(const std::string& channel, std::uint64_t seq,
                          std::chrono::nanoseconds timeout) {
  SubscriberOptions options;
  options.policy = Policy::drop;
  options.start = StartFrom::sequence;
  options.start_sequence = seq;
  options.abandon_timeout = std::chrono::milliseconds(1);
  auto sub = Subscriber::open(channel, options);
  if (!sub) return tl::unexpected(sub.error());
  const auto deadline = Clock::now() + timeout;
  std::optional<bool> fate;
  for (;;) {
    sub->poll(
        [&](const Message& m) {
          if (!fate && m.sequence >= seq) fate = (m.sequence == seq);
        },
        16);
    if (!fate && sub->next_sequence() > seq) fate = false;  // walked past it without a record
    if (fate) return *fate;
    if (sub->status() == PollStatus::corrupt || sub->status() == PollStatus::evicted) {
      return tl::unexpected(Error{ErrorCode::corrupt,
                                  fmt::format("channel '{}': reading local sequence {} to settle "
                                              "bridge in's last record: {}",
                                              channel, seq, sub->last_error())});
    }
    if (Clock::now() >= deadline) {
      return tl::unexpected(Error{ErrorCode::timed_out,
                                  fmt::format("channel '{}': local sequence {} neither committed "
                                              "nor abandoned after {} ms (settling bridge in's "
                                              "last record)",
                                              channel, seq,
                                              std::chrono::duration_cast<std::chrono::milliseconds>(
                                                  timeout)
                                                  .count())});
    }
    (void)sub->wait(std::chrono::milliseconds(1));  // its idle check repairs a dead claim
  }
}

// The origin sequence of a record's last (a gap: its range's last).
std::uint64_t last_origin_seq(const IncomingRecord& r) noexcept {
  return r.kind == IncomingKind::gap ? r.origin_seq + r.gap_count - 1 : r.origin_seq;
}

}  // namespace

const char* to_string(ApplyOutcome outcome) noexcept {
  switch (outcome) {
    case ApplyOutcome::applied: return "applied";
    case ApplyOutcome::duplicate: return "duplicate";
    case ApplyOutcome::own_skipped: return "own_skipped";
    case ApplyOutcome::back_pressured: return "back_pressured";
  }
  return "?";
}

const char* to_string(Settlement settlement) noexcept {
  switch (settlement) {
    case Settlement::clean: return "clean";
    case Settlement::promoted: return "promoted";
    case Settlement::discarded: return "discarded";
    case Settlement::gap_finished: return "gap_finished";
  }
  return "?";
}

Result<InApplier> InApplier::open(Publisher& publisher, shmbus::detail::BridgeSegment& segment,
                                  ApplierOptions options) {
  if (!publisher.info().single_producer) {
    return tl::unexpected(Error{ErrorCode::invalid_argument,
                                fmt::format("channel '{}' is a multi-producer channel: bridge in "
                                            "must be its only producer",
                                            publisher.info().name)});
  }
  InApplier applier(publisher, segment, std::move(options));
  applier.applied_ = segment.applied();
  applier.intent_ = segment.intent();
  if (auto settled = applier.settle(); !settled) return tl::unexpected(settled.error());
  return applier;
}

Result<void> InApplier::settle() {
  if (intent_ == applied_) return {};
  const std::uint64_t next = publisher_->next_sequence();
  if (intent_.local_seq >= next) {
    // A gap whose intent was written before it was (wholly) laid out: finish it.
    gap_pending_ = true;
    pending_record_seq_ = 0;
    if (intent_.local_seq == next) {  // laid out, applied not yet written
      settlement_ = Settlement::promoted;
      auto done = finish_gap();
      if (!done) return tl::unexpected(done.error());
      return {};
    }
    settlement_ = Settlement::gap_finished;
    report(fmt::format("settling: laying out local sequences {}-{} of a gap (stream sequence {}) "
                       "a previous bridge in left unfinished",
                       next, intent_.local_seq - 1, intent_.stream_seq));
    auto done = finish_gap();
    if (!done) return tl::unexpected(done.error());
    return {};  // not done (back-pressured): the first apply() finishes it
  }
  // A data record's claim (or a skip, which keeps the last local sequence): committed or not?
  bool committed = intent_.local_seq == 0;  // a skip before anything was applied locally
  if (!committed) {
    auto fate = committed_at(publisher_->info().name, intent_.local_seq, options_.settle_timeout);
    if (!fate) return tl::unexpected(fate.error());
    committed = *fate;
  }
  if (committed) {
    settlement_ = Settlement::promoted;
    write_applied(intent_);
  } else {
    settlement_ = Settlement::discarded;
    report(fmt::format("settling: local sequence {} was claimed but never committed (stream "
                       "sequence {}): it counts as lost locally, the record is applied again",
                       intent_.local_seq, intent_.stream_seq));
    write_intent(applied_);
  }
  return {};
}

Result<bool> InApplier::finish_gap() {
  const std::uint64_t next = publisher_->next_sequence();
  if (next < intent_.local_seq) {
    std::uint64_t published = 0;
    const PublishStatus st =
        publisher_->publish_gap(intent_.local_seq - next, options_.claim_timeout, &published);
    if (st == PublishStatus::timed_out || st == PublishStatus::back_pressured) return false;
    if (st != PublishStatus::ok) {
      return tl::unexpected(Error{st == PublishStatus::corrupt ? ErrorCode::corrupt
                                                               : ErrorCode::system,
                                  fmt::format("channel '{}': laying out local sequences {}-{} as "
                                              "lost: {}",
                                              publisher_->info().name, next,
                                              intent_.local_seq - 1, to_string(st))});
    }
  }
  hook(ApplyStep::gap_laid_out, intent_.local_seq - 1);
  write_applied(intent_);
  gap_pending_ = false;
  hook(ApplyStep::applied_written, intent_.local_seq - 1);
  return true;
}

Result<ApplyOutcome> InApplier::apply(const IncomingRecord& record) {
  if (record.kind == IncomingKind::gap && record.gap_count == 0) {
    return tl::unexpected(
        Error{ErrorCode::invalid_argument,
              fmt::format("stream sequence {}: a GAP record of 0 sequences", record.stream_seq)});
  }
  if (record.origin_seq == 0) {
    return tl::unexpected(
        Error{ErrorCode::invalid_argument,
              fmt::format("stream sequence {}: origin sequence 0", record.stream_seq)});
  }
  if (gap_pending_) {
    const bool for_this = pending_record_seq_ == record.stream_seq;
    auto done = finish_gap();
    if (!done) return tl::unexpected(done.error());
    if (!*done) return ApplyOutcome::back_pressured;
    pending_record_seq_ = 0;
    if (for_this && record.kind == IncomingKind::gap) return ApplyOutcome::applied;
  }

  auto& c = segment_->counters();
  const Position a = applied_;
  const bool fresh = a == Position{};
  // Rule 2, by stream sequence while the stream is the one the applied position came from.
  if (!fresh && a.stream_created_ns == record.stream_created_ns && record.stream_seq <= a.stream_seq) {
    c.duplicates.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic
    return ApplyOutcome::duplicate;
  }
  Position skip_to = a;  // a record not applied still moves the stream position past it
  skip_to.stream_seq = record.stream_seq;
  skip_to.stream_created_ns = record.stream_created_ns;
  // Rule 1.
  if (record.origin_host == options_.host) {
    advance(skip_to);
    c.own_skipped.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic
    return ApplyOutcome::own_skipped;
  }
  // Rule 2 by origin (a re-created stream), and rule 3.
  const std::uint64_t last = last_origin_seq(record);
  std::uint64_t first = record.origin_seq;  // the first origin sequence still to apply
  std::uint64_t missing = 0;                // origin sequences the stream lost before `first`
  if (a.origin_incarnation != 0 && a.origin_incarnation == record.origin_incarnation) {
    if (last <= a.origin_seq) {
      advance(skip_to);
      c.duplicates.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic
      return ApplyOutcome::duplicate;
    }
    if (first <= a.origin_seq) first = a.origin_seq + 1;  // a gap overlapping what was applied
    missing = first - a.origin_seq - 1;
  } else if (a.origin_incarnation != 0) {
    missing = first - 1;  // a new origin incarnation starts at 1
  }
  if (missing > 0) {
    c.stream_gaps.fetch_add(missing, std::memory_order_relaxed);  // relaxed: a statistic
    const std::string range = missing == 1 ? fmt::format("sequence {}", first - 1)
                                           : fmt::format("sequences {}-{}", first - missing,
                                                         first - 1);
    report(fmt::format("stream gap: origin {:016x} {} {} not in the stream (before stream "
                       "sequence {}): laid out as lost",
                       record.origin_incarnation, range, missing == 1 ? "is" : "are",
                       record.stream_seq));
  }
  if (record.kind == IncomingKind::gap) {
    c.gaps.fetch_add(1, std::memory_order_relaxed);                        // relaxed: a statistic
    c.gap_sequences.fetch_add(last - first + 1, std::memory_order_relaxed);  // relaxed: as above
    Position p = skip_to;
    p.origin_incarnation = record.origin_incarnation;
    p.origin_seq = last;
    p.local_seq = publisher_->next_sequence() + missing + (last - first + 1);
    return apply_gap(p, record.stream_seq, /*completes_record=*/true);
  }
  if (missing > 0) {
    // The lost sequences first, as their own step: applied then stands just before this record.
    Position p = skip_to;
    p.stream_seq = record.stream_seq - 1;
    p.origin_incarnation = record.origin_incarnation;
    p.origin_seq = first - 1;
    p.local_seq = publisher_->next_sequence() + missing;
    auto gap = apply_gap(p, record.stream_seq, /*completes_record=*/false);
    if (!gap || *gap != ApplyOutcome::applied) return gap;
  }
  return apply_data(record);
}

Result<ApplyOutcome> InApplier::apply_gap(const Position& p, std::uint64_t record_seq,
                                          bool completes_record) {
  write_intent(p);
  gap_pending_ = true;
  pending_record_seq_ = completes_record ? record_seq : 0;
  hook(ApplyStep::gap_intent_written, p.local_seq - 1);
  auto done = finish_gap();
  if (!done) return tl::unexpected(done.error());
  if (!*done) return ApplyOutcome::back_pressured;
  pending_record_seq_ = 0;
  return ApplyOutcome::applied;
}

Result<ApplyOutcome> InApplier::apply_data(const IncomingRecord& record) {
  if (record.payload.size() > UINT32_MAX) {
    return tl::unexpected(Error{ErrorCode::invalid_argument,
                                fmt::format("stream sequence {}: a payload of {} bytes",
                                            record.stream_seq, record.payload.size())});
  }
  const auto size = static_cast<std::uint32_t>(record.payload.size());
  const bool tagged = !record.key.empty() || record.message_type != 0;
  const RecordTag tag{record.key, record.message_type};
  for (;;) {
    Claim claim;
    const PublishStatus st = tagged ? publisher_->claim(size, claim, tag, options_.claim_timeout)
                                    : publisher_->claim(size, claim, options_.claim_timeout);
    if (st == PublishStatus::timed_out || st == PublishStatus::back_pressured) {
      return ApplyOutcome::back_pressured;
    }
    if (st != PublishStatus::ok) {
      const ChannelInfo& info = publisher_->info();
      if (st == PublishStatus::too_large) {
        return tl::unexpected(
            Error{ErrorCode::invalid_argument,
                  fmt::format("stream sequence {} (origin sequence {}): a record of {} bytes{} "
                              "does not fit channel '{}' (max_message {}); nothing is dropped, "
                              "bridge in stops",
                              record.stream_seq, record.origin_seq, size,
                              tagged ? fmt::format(" with a key of {} bytes", record.key.size())
                                     : std::string(),
                              info.name, info.max_message)});
      }
      return tl::unexpected(Error{ErrorCode::corrupt,
                                  fmt::format("channel '{}': claiming local space: {}", info.name,
                                              to_string(st))});
    }
    if (size != 0) std::memcpy(claim.data(), record.payload.data(), size);
    hook(ApplyStep::claimed, claim.sequence());
    Position p{record.stream_seq, record.stream_created_ns, record.origin_incarnation,
               record.origin_seq, claim.sequence()};
    write_intent(p);
    hook(ApplyStep::intent_written, claim.sequence());
    if (publisher_->commit(claim) == PublishStatus::abandoned) {
      // We stalled past a subscriber's abandon timeout and it gave the sequence up: claim again.
      report(fmt::format("local sequence {} was marked abandoned before its commit (bridge in "
                         "stalled): the record is applied again",
                         claim.sequence()));
      write_intent(applied_);
      continue;
    }
    hook(ApplyStep::committed, claim.sequence());
    write_applied(p);
    hook(ApplyStep::applied_written, claim.sequence());
    auto& c = segment_->counters();
    c.published_or_applied.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic
    return ApplyOutcome::applied;
  }
}

void InApplier::skip(std::uint64_t stream_seq, std::uint64_t stream_created_ns) {
  if (gap_pending_) return;  // the pending gap's position must stay the intent until laid out
  Position p = applied_;
  if (p.stream_created_ns == stream_created_ns && stream_seq <= p.stream_seq) return;
  p.stream_seq = stream_seq;
  p.stream_created_ns = stream_created_ns;
  advance(p);
}

void InApplier::advance(const Position& p) {
  write_intent(p);
  write_applied(p);
}

void InApplier::write_intent(const Position& p) {
  segment_->set_intent(p);
  intent_ = p;
}

void InApplier::write_applied(const Position& p) {
  segment_->set_applied(p);
  applied_ = p;
  auto& c = segment_->counters();
  c.origin_incarnation.store(p.origin_incarnation, std::memory_order_relaxed);  // relaxed: stats
  c.origin_seq.store(p.origin_seq, std::memory_order_relaxed);  // relaxed: a statistic
  c.stream_seq.store(p.stream_seq, std::memory_order_relaxed);  // relaxed: a statistic
}

}  // namespace shmbus::bridge
