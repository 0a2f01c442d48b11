// The checkpoint file's format (StateCheckpoint, include/shmbus/checkpoint.hpp), shared by its
// writer and its reader. Prose and a byte diagram are in docs/exactly-once.md.
//
//   header (48 bytes) | applied_count x u64 sequences, ascending | state_size bytes of state
//
// All integers little-endian (the host's: the file does not travel between machines). The file is
// exactly 48 + 8 * applied_count + state_size bytes long; anything else is damage.
#pragma once

#include <cstddef>
#include <cstdint>

namespace shmbus::detail {

inline constexpr char kCheckpointMagic[8] = {'S', 'H', 'M', 'B', 'C', 'K', 'P', 'T'};
inline constexpr std::uint32_t kCheckpointVersion = 1;

struct CheckpointHeader {
  char magic[8];                  // kCheckpointMagic
  std::uint32_t version;          // kCheckpointVersion
  std::uint32_t header_size;      // sizeof(CheckpointHeader)
  std::uint64_t applied_through;  // AppliedSet::through
  std::uint64_t applied_count;    // sequences after the header
  std::uint64_t state_size;       // state bytes after the sequences
  std::uint32_t reserved;         // zero
  // Masked CRC32C (journal/format.hpp's mask_crc) of the header's bytes 0..43 followed by
  // everything after the header.
  std::uint32_t crc;
};
static_assert(sizeof(CheckpointHeader) == 48);
static_assert(offsetof(CheckpointHeader, version) == 8);
static_assert(offsetof(CheckpointHeader, header_size) == 12);
static_assert(offsetof(CheckpointHeader, applied_through) == 16);
static_assert(offsetof(CheckpointHeader, applied_count) == 24);
static_assert(offsetof(CheckpointHeader, state_size) == 32);
static_assert(offsetof(CheckpointHeader, reserved) == 40);
static_assert(offsetof(CheckpointHeader, crc) == 44);

inline constexpr std::size_t kCheckpointCrcOffset = offsetof(CheckpointHeader, crc);

}  // namespace shmbus::detail
