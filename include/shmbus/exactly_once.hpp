// Exactly-once processing for consumer groups (and plain named subscribers): each member folds the
// records it is given into a state with a pure function, and across kill -9 of any member at any
// moment, restarts and redeliveries, no record's effect reaches the members' committed states
// twice and none is lost.
//
//   auto member = shmbus::GroupConsumer::open("orders", "risk", options).value();
//   auto store = shmbus::CheckpointDirectory::open("/var/lib/risk/eo", "risk-1").value();
//   auto eo = shmbus::ExactlyOnce<Totals>::open(member, store).value();
//   for (;;) {
//     member.wait(std::chrono::seconds(1));
//     eo.process([](Totals& t, const shmbus::GroupMessage& m) { t.add(m.payload); }).value();
//   }
//
// The protocol (docs/exactly-once.md says the same, with what it covers and what it does not):
//  1. Each member has a stable name and a checkpoint: its state and the set of sequences applied to
//     it that the group may still deliver again (AppliedSet). On start it loads it.
//  2. process() polls a batch. For each redelivered record it asks whether ANY member's committed
//     checkpoint lists it as applied (after the whole batch was delivered: a record is only
//     redelivered once its previous holder can no longer commit it); if so the record is only
//     acked. Every other record is pin()ned: fenced means another member owns it now and it is
//     dropped (not applied, not acked); otherwise it is applied to a copy of the state.
//  3. The copy and the applied set (with the batch's sequences added, and those below the group's
//     retired_through(), read just before, trimmed) are committed in one atomic, durable step: one
//     fdatasync per batch, not per record.
//  4. Then the batch is acked. A crash before the commit leaves the records unapplied in every
//     checkpoint and the group delivers them again; a crash after it leaves them listed, and their
//     redelivery is only acked. pin() closes the remaining window: a member stalled past the ack
//     timeout between applying and committing keeps its records (the group does not give them to
//     another member) instead of having them applied twice.
//
// Exactly-once: the effect of each record on the sum of the members' committed states, across
// kill -9 of any member at any moment (restarted under its name or not) and across a member
// stalled past the ack timeout (thanks to pin()). Across a host power loss only as far as the
// commit's fdatasync and directory fsync make it durable. Not exactly-once: side effects the apply
// function has outside its State (they happen again on redelivery); a member whose checkpoint
// directory (or store) is not shared with the others (its applied set is invisible to them); a
// record the group dead-letters after max_attempts (its effect is then absent, unless its last
// holder committed it and died before acking). docs/exactly-once.md has the details.
//
// ExactlyOnce holds references to its member and its store: both must outlive it and stay where
// they are. Call process() from the thread that polls the member.
#pragma once

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "checkpoint.hpp"
#include "group_consumer.hpp"
#include "result.hpp"
#include "subscriber.hpp"

namespace shmbus {

// What ExactlyOnce needs of a group member: GroupConsumer, or a test's stand-in.
template <class M>
concept ExactlyOnceMember = requires(M& m, const M& cm, std::uint64_t sequence,
                                     GroupConsumer::Sink sink, std::size_t n) {
  { m.poll_sink(sink, n) } -> std::same_as<std::size_t>;
  { m.pin(sequence) } -> std::same_as<AckStatus>;
  { m.ack(sequence) } -> std::same_as<AckStatus>;
  { cm.retired_through() } -> std::same_as<std::uint64_t>;
};

// Where the members' checkpoints live: the callback form, for an application that keeps its state
// in its own database. CheckpointDirectory is the file implementation.
class ExactlyOnceStore {
 public:
  virtual ~ExactlyOnceStore() = default;
  // This member's last committed state and applied set; empty ones if it never committed.
  virtual Result<CheckpointData> load() = 0;
  // Called once for each batch that holds redeliveries, after the batch was delivered and before
  // its applied() questions: a store that reads several places may take its snapshot here.
  virtual Result<void> begin_lookup() { return {}; }
  // Whether the committed checkpoint of ANY member of the group (this one's included) covers
  // `sequence` (AppliedSet::covers).
  virtual Result<bool> applied(std::uint64_t sequence) = 0;
  // Replaces this member's checkpoint with `state` and `applied` in one atomic and durable step:
  // once it returns, applied() of every member sees it; if it fails, the previous one stands (or,
  // if the new one is in place anyway, committing it again must be harmless).
  virtual Result<void> commit(std::span<const std::byte> state, const AppliedSet& applied) = 0;
};

// The file store: every member's checkpoint is `<directory>/<name>.ckpt` (StateCheckpoint), in one
// directory shared by the whole group. `<directory>/<name>.lock` is flocked while this object
// lives, so a second live process under the same name is refused (busy) instead of overwriting
// the first one's checkpoint; the kernel drops the lock when the process dies.
class CheckpointDirectory final : public ExactlyOnceStore {
 public:
  // `name`: 1 to 128 characters of [A-Za-z0-9._-], not starting with '.'. The directory must
  // exist.
  static Result<CheckpointDirectory> open(const std::string& directory, const std::string& name);

  CheckpointDirectory(CheckpointDirectory&& other) noexcept;
  CheckpointDirectory& operator=(CheckpointDirectory&& other) noexcept;
  CheckpointDirectory(const CheckpointDirectory&) = delete;
  CheckpointDirectory& operator=(const CheckpointDirectory&) = delete;
  ~CheckpointDirectory() override;

  Result<CheckpointData> load() override;
  // Reads every other member's `*.ckpt` in the directory; a damaged one is an error (corrupt,
  // naming it): which records it applied cannot be known, so nothing may be decided.
  Result<void> begin_lookup() override;
  Result<bool> applied(std::uint64_t sequence) override;
  Result<void> commit(std::span<const std::byte> state, const AppliedSet& applied) override;

  const std::string& checkpoint_path() const noexcept { return checkpoint_.path(); }

 private:
  CheckpointDirectory() = default;
  std::string directory_;
  std::string file_name_;  // "<name>.ckpt"
  StateCheckpoint checkpoint_;
  int lock_fd_ = -1;
  AppliedSet own_;                   // as last loaded or committed
  std::vector<std::uint64_t> others_;  // begin_lookup's snapshot: the others' lists, merged
  std::uint64_t others_through_ = 0;   // the highest `through` among them
};

// How a State becomes the checkpoint's bytes and back. Trivially copyable states are copied as
// they are (a checkpoint is read back by the same build on the same host); std::vector<std::byte>
// is taken as is; specialize it for anything else. decode() gets an empty span for a member that
// never committed.
template <class State>
struct StateCodec {
  static_assert(std::is_trivially_copyable_v<State>,
                "specialize shmbus::StateCodec<State> for a State that is not trivially copyable");
  static void encode(const State& state, std::vector<std::byte>& out) {
    out.resize(sizeof(State));
    std::memcpy(out.data(), &state, sizeof(State));
  }
  static Result<State> decode(std::span<const std::byte> bytes) {
    State state{};
    if (bytes.empty()) return state;
    if (bytes.size() != sizeof(State)) {
      return tl::unexpected(Error{ErrorCode::corrupt,
                                  "checkpointed state has " + std::to_string(bytes.size()) +
                                      " bytes, the State type " + std::to_string(sizeof(State))});
    }
    std::memcpy(&state, bytes.data(), sizeof(State));
    return state;
  }
};

template <>
struct StateCodec<std::vector<std::byte>> {
  static void encode(const std::vector<std::byte>& state, std::vector<std::byte>& out) { out = state; }
  static Result<std::vector<std::byte>> decode(std::span<const std::byte> bytes) {
    return std::vector<std::byte>(bytes.begin(), bytes.end());
  }
};

// What process() did, summed over the helper's life.
struct ExactlyOnceCounters {
  std::uint64_t applied = 0;   // records applied and committed
  std::uint64_t skipped = 0;   // redeliveries found applied in a checkpoint: only acked
  std::uint64_t dropped = 0;   // records whose pin() was fenced: another member owns them now
  std::uint64_t commits = 0;   // checkpoints committed (one per batch that applied anything)
  // Acks refused after a commit (the group had taken the record back anyway, e.g. it found this
  // process dead): harmless, its redelivery will be found applied.
  std::uint64_t late_acks = 0;
};

template <class State, class Member = GroupConsumer>
  requires ExactlyOnceMember<Member>
class ExactlyOnce {
 public:
  // Loads this member's checkpoint from `store`. `max_batch` (1 to 65536): records per process().
  static Result<ExactlyOnce> open(Member& member, ExactlyOnceStore& store,
                                  std::size_t max_batch = 64) {
    if (max_batch == 0 || max_batch > 65536) {
      return tl::unexpected(Error{ErrorCode::invalid_argument,
                                  "exactly-once max_batch must be 1 to 65536, not " +
                                      std::to_string(max_batch)});
    }
    auto loaded = store.load();
    if (!loaded) return tl::unexpected(loaded.error());
    auto state = StateCodec<State>::decode(loaded->state);
    if (!state) return tl::unexpected(state.error());
    return ExactlyOnce(member, store, max_batch, std::move(*state), std::move(loaded->applied));
  }

  // One batch, as the protocol above says: polls up to max_batch records, applies those it must
  // with apply(State&, const GroupMessage&), commits, acks. Returns how many records it was given
  // (0: none were ready). apply must be a pure function of the state and the record and must not
  // throw: if it does, the exception propagates, nothing of the batch is committed, and the records
  // it pinned return to the group only when the member leaves it.
  //
  // On an error nothing of the batch is acked. A lookup error (begin_lookup, applied) happens
  // before anything is pinned: the records go back to the group after the ack timeout. A commit
  // error keeps the batch (its records stay pinned to this member): the next process() retries
  // the commit before polling anything new, so a full disk delays the group instead of losing work.
  template <class Apply>
  Result<std::size_t> process(Apply&& apply) {
    if (pending_) return finish_batch();
    batch_.clear();
    copies_.clear();
    lengths_.clear();
    const GroupConsumer::Sink sink{this, [](void* self, const GroupMessage& m) {
                                     static_cast<ExactlyOnce*>(self)->keep(m);
                                   }};
    const std::size_t delivered = member_->poll_sink(sink, max_batch_);
    if (batch_.empty()) return delivered;
    // The copies are complete (no more reallocation): point the batch at them.
    std::size_t at = 0;
    for (std::size_t i = 0; i < batch_.size(); ++i) {
      const auto [payload, key] = lengths_[i];
      batch_[i].payload = {copies_.data() + at, payload};
      batch_[i].key = {copies_.data() + at + payload, key};
      at += payload + key;
    }

    // Lookups first, for the whole batch and before any pin, so that an error leaves nothing
    // pinned. The batch has been delivered in full: each redelivered record's previous holder has
    // lost it, so no checkpoint can gain it after this point.
    decisions_.assign(batch_.size(), Decision::apply);
    mark_repeats();
    bool looked = false;
    for (std::size_t i = 0; i < batch_.size(); ++i) {
      if (!batch_[i].redelivered || decisions_[i] == Decision::repeat) continue;
      if (applied_.covers(batch_[i].sequence)) {
        decisions_[i] = Decision::skip;
        continue;
      }
      if (!looked) {
        if (auto begun = store_->begin_lookup(); !begun) return tl::unexpected(begun.error());
        looked = true;
      }
      auto found = store_->applied(batch_[i].sequence);
      if (!found) return tl::unexpected(found.error());
      if (*found) decisions_[i] = Decision::skip;
    }

    working_ = state_;
    new_applied_.clear();
    to_ack_.clear();
    for (std::size_t i = 0; i < batch_.size(); ++i) {
      const GroupMessage& m = batch_[i];
      if (decisions_[i] == Decision::repeat) continue;
      if (decisions_[i] == Decision::skip) {
        ++counters_.skipped;
        to_ack_.push_back(m.sequence);
        continue;
      }
      if (member_->pin(m.sequence) != AckStatus::ok) {
        ++counters_.dropped;  // fenced (or not held): whoever holds it now applies it
        continue;
      }
      apply(working_, m);
      new_applied_.push_back(m.sequence);
      to_ack_.push_back(m.sequence);
    }
    std::sort(new_applied_.begin(), new_applied_.end());
    pending_applied_ = applied_;
    pending_applied_.add(new_applied_);
    pending_ = true;
    return finish_batch();
  }

  const State& state() const noexcept { return state_; }
  // The applied set as last committed (or loaded).
  const AppliedSet& applied_set() const noexcept { return applied_; }
  const ExactlyOnceCounters& counters() const noexcept { return counters_; }
  // A batch whose commit failed and is retried by the next process().
  bool pending() const noexcept { return pending_; }

 private:
  // apply: pin, apply, ack. skip: found applied, only ack. repeat: the same record comes again
  // later in this batch (it expired and came back to this member within one poll): only that
  // last delivery counts.
  enum class Decision : std::uint8_t { apply, skip, repeat };

  void mark_repeats() {
    sorted_.clear();
    for (const GroupMessage& m : batch_) sorted_.push_back(m.sequence);
    std::sort(sorted_.begin(), sorted_.end());
    if (std::adjacent_find(sorted_.begin(), sorted_.end()) == sorted_.end()) return;
    for (std::size_t i = 0; i < batch_.size(); ++i) {
      for (std::size_t j = i + 1; j < batch_.size(); ++j) {
        if (batch_[j].sequence == batch_[i].sequence) decisions_[i] = Decision::repeat;
      }
    }
  }

  ExactlyOnce(Member& member, ExactlyOnceStore& store, std::size_t max_batch, State state,
              AppliedSet applied)
      : member_(&member), store_(&store), max_batch_(max_batch), state_(std::move(state)),
        applied_(std::move(applied)) {
    batch_.reserve(max_batch);
    lengths_.reserve(max_batch);
  }

  // A record as the member delivers it: its payload and key are valid only inside the callback,
  // and the batch is applied after the last one, so both are copied (into a buffer kept between
  // batches). The spans are set once the batch is complete.
  void keep(const GroupMessage& m) {
    copies_.insert(copies_.end(), m.payload.begin(), m.payload.end());
    copies_.insert(copies_.end(), m.key.begin(), m.key.end());
    GroupMessage kept = m;
    kept.payload = {};
    kept.key = {};
    batch_.push_back(kept);
    lengths_.emplace_back(m.payload.size(), m.key.size());
  }

  // Commits the pending batch (unless it applied nothing), then acks it.
  Result<std::size_t> finish_batch() {
    const std::size_t given = batch_.size();
    if (!new_applied_.empty()) {
      // Read before the commit: every sequence below it is retired, will never be delivered
      // again, and so need not be listed. This batch's records are held, hence at or above it.
      pending_applied_.trim(member_->retired_through());
      StateCodec<State>::encode(working_, encoded_);
      if (auto committed = store_->commit(encoded_, pending_applied_); !committed) {
        return tl::unexpected(committed.error());
      }
      state_ = std::move(working_);
      applied_ = std::move(pending_applied_);
      counters_.applied += new_applied_.size();
      ++counters_.commits;
    }
    pending_ = false;
    for (const std::uint64_t sequence : to_ack_) {
      if (member_->ack(sequence) != AckStatus::ok) ++counters_.late_acks;
    }
    new_applied_.clear();
    to_ack_.clear();
    batch_.clear();
    return given;
  }

  Member* member_;
  ExactlyOnceStore* store_;
  std::size_t max_batch_;
  State state_;
  AppliedSet applied_;
  ExactlyOnceCounters counters_;
  // The batch in progress (kept between calls only while its commit is pending).
  std::vector<GroupMessage> batch_;
  std::vector<std::byte> copies_;  // the batch's payloads and keys, back to back
  std::vector<std::pair<std::size_t, std::size_t>> lengths_;  // each record's payload and key
  std::vector<Decision> decisions_;
  std::vector<std::uint64_t> sorted_;  // the batch's sequences, to find repeats
  State working_{};
  AppliedSet pending_applied_;
  std::vector<std::uint64_t> new_applied_;
  std::vector<std::uint64_t> to_ack_;
  std::vector<std::byte> encoded_;
  bool pending_ = false;
};

// The single-consumer case: one named Subscriber (SubscriberOptions::name, manual_release = true,
// Policy::block for no loss) and one StateCheckpoint. There is no one to share records with, so
// the applied set is only a watermark: AppliedSet::through is the next sequence to apply. process()
// polls, skips what lies below the watermark (a restart resumes at the last released cursor, which
// may lie behind the last commit), applies the rest to a copy, commits the copy with the new
// watermark, then releases the subscriber's cursor. A subscriber without manual_release would
// publish its position before the commit, and a crash in between would lose records.
template <class State>
class ExactlyOnceSubscriber {
 public:
  static Result<ExactlyOnceSubscriber> open(Subscriber& subscriber, StateCheckpoint& checkpoint) {
    auto loaded = checkpoint.load();
    if (!loaded) return tl::unexpected(loaded.error());
    auto state = StateCodec<State>::decode(loaded->state);
    if (!state) return tl::unexpected(state.error());
    return ExactlyOnceSubscriber(subscriber, checkpoint, std::move(*state), loaded->applied.through);
  }

  // apply(State&, const Message&) runs inside Subscriber::poll, which is noexcept: it must not
  // throw. A commit error keeps the batch; the next process() retries it before polling.
  template <class Apply>
  Result<std::size_t> process(Apply&& apply, std::size_t max_messages = 256) {
    if (pending_) return finish_batch(0);
    working_ = state_;
    pending_through_ = through_;
    const std::size_t delivered = subscriber_->poll(
        [&](const Message& m) {
          if (m.sequence < pending_through_) return;
          apply(working_, m);
          pending_through_ = m.sequence + 1;
        },
        max_messages);
    cursor_ = subscriber_->cursor();
    pending_ = true;
    return finish_batch(delivered);
  }

  const State& state() const noexcept { return state_; }
  // The next sequence to apply: every record below it is in state().
  std::uint64_t applied_through() const noexcept { return through_; }
  bool pending() const noexcept { return pending_; }

 private:
  ExactlyOnceSubscriber(Subscriber& subscriber, StateCheckpoint& checkpoint, State state,
                        std::uint64_t through)
      : subscriber_(&subscriber), checkpoint_(&checkpoint), state_(std::move(state)),
        through_(through) {}

  Result<std::size_t> finish_batch(std::size_t delivered) {
    if (pending_through_ != through_) {
      StateCodec<State>::encode(working_, encoded_);
      AppliedSet applied;
      applied.through = pending_through_;
      if (auto committed = checkpoint_->commit(encoded_, applied); !committed) {
        return tl::unexpected(committed.error());
      }
      state_ = std::move(working_);
      through_ = pending_through_;
    }
    pending_ = false;
    subscriber_->release(cursor_);
    return delivered;
  }

  Subscriber* subscriber_;
  StateCheckpoint* checkpoint_;
  State state_;
  std::uint64_t through_;
  State working_{};
  std::uint64_t pending_through_ = 0;
  Subscriber::Cursor cursor_{};
  std::vector<std::byte> encoded_;
  bool pending_ = false;
};

}  // namespace shmbus
