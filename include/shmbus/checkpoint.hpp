// StateCheckpoint: one file holding an application's state bytes and the sequences it has applied
// that may still be delivered again, replaced atomically. The exactly-once helper
// (exactly_once.hpp) keeps one per group member; it is usable on its own by anything that must
// commit "this state reflects exactly these records" in one step.
//
//   auto ckpt = shmbus::StateCheckpoint::open("/var/lib/app/eo/risk-1.ckpt").value();
//   shmbus::CheckpointData data = ckpt.load().value();  // empty the first time
//   ... apply records to data.state, add their sequences to data.applied ...
//   ckpt.commit(data).value();  // durable, and either all of it or none of it
//
// commit() writes a temporary file beside the checkpoint (`<file>.tmp`), fdatasyncs it, renames
// it over the checkpoint and fsyncs the directory: a reader (another process, or this one after
// kill -9 or a power loss) sees the previous checkpoint or the new one, never a mix. load()
// validates the header, every length and the CRC32C: a damaged or truncated file is
// ErrorCode::corrupt naming it, never an empty state. The format is in docs/exactly-once.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "result.hpp"

namespace shmbus {

// The sequences a state reflects, as far as anyone may still ask: every sequence below `through`
// is settled (it will never be delivered again, so whether it was applied no longer matters),
// and `sequences` lists, strictly ascending and each at or above `through`, those at or above it
// that were applied.
struct AppliedSet {
  std::uint64_t through = 0;
  std::vector<std::uint64_t> sequences;

  // True if `sequence` is listed as applied or lies below `through` (settled).
  bool covers(std::uint64_t sequence) const noexcept;
  // Adds `sorted` (strictly ascending, none already listed) to the list, keeping it ascending.
  void add(std::span<const std::uint64_t> sorted);
  // Raises `through` to `retired_through` (if higher) and drops the listed sequences below it.
  void trim(std::uint64_t retired_through);
};

struct CheckpointData {
  std::vector<std::byte> state;
  AppliedSet applied;
};

class StateCheckpoint {
 public:
  // The largest state and the longest applied list a checkpoint may hold (load refuses more, so a
  // damaged length cannot make it allocate without bound).
  static constexpr std::uint64_t kMaxStateBytes = std::uint64_t{1} << 30;
  static constexpr std::uint64_t kMaxApplied = std::uint64_t{1} << 24;

  // The checkpoint at `file`. Its directory must exist (not_found otherwise); the file need not.
  static Result<StateCheckpoint> open(std::string file);

  // The last committed checkpoint; an empty CheckpointData if the file does not exist. Damage of
  // any kind (bad magic, version, lengths, order of the applied list, CRC, truncation, trailing
  // bytes) is ErrorCode::corrupt; I/O errors are permission_denied or system. Each names the file.
  Result<CheckpointData> load() const;

  // Replaces the checkpoint with `data` (applied.sequences strictly ascending, each >=
  // applied.through; invalid_argument otherwise), durably. On any error (no_space for a full file
  // system, quota or file size limit; permission_denied; system) the previous checkpoint is left
  // as it was and the temporary file is removed. The encoding buffer is kept between commits.
  Result<void> commit(const CheckpointData& data);
  Result<void> commit(std::span<const std::byte> state, const AppliedSet& applied);

  const std::string& path() const noexcept { return path_; }

  // No checkpoint: only to be assigned to (load and commit on it fail).
  StateCheckpoint() = default;

 private:
  std::string path_;
  std::string directory_;
  std::vector<std::byte> buffer_;
};

// Reads and validates the checkpoint at `file` (as StateCheckpoint::load; a missing file is an
// empty CheckpointData), for readers that do not own it: the helper looks into the other members'.
Result<CheckpointData> read_checkpoint(const std::string& file);

}  // namespace shmbus
