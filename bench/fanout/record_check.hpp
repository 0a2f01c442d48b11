// What a fanout subscriber checks of every record it receives, and the content the publisher
// writes so that the check can fail:
//   - sequence: block: exactly the next one with nothing lost; drop: the next one plus
//     lost_before (the gap the subscriber was lapped over);
//   - content: `size` bytes; the first 8 carry the record's own sequence (write_seq), every later
//     byte is fill_byte(sequence).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "shmbus/options.hpp"
#include "shmbus/subscriber.hpp"

namespace shmbus::bench {

// The byte every payload byte after the sequence holds: it varies with the sequence, so a record
// from another lap or another position does not pass.
inline std::byte fill_byte(std::uint64_t sequence) {
  return static_cast<std::byte>(0x5a ^ (sequence * 0x9e));
}

// Writes a record's content as the check expects it (`size` >= 8 bytes at `payload`).
void fill_record(std::byte* payload, std::size_t size, std::uint64_t sequence);

// Checks records one by one from poll's handler, which must not throw: it notes the first wrong
// record and ignores everything after it; the caller looks at failure() after poll.
class RecordCheck {
 public:
  RecordCheck(Policy policy, std::size_t size, std::uint64_t first_sequence)
      : policy_(policy), size_(size), expected_(first_sequence) {}

  void operator()(const Message& m) noexcept;

  // Empty while every record was right, else what the first wrong one was.
  const std::string& failure() const { return failure_; }
  std::uint64_t received() const { return received_; }  // right records
  std::uint64_t lost() const { return lost_; }          // sum of their lost_before

 private:
  void fail(const Message& m, const char* what) noexcept;

  Policy policy_;
  std::size_t size_;
  std::uint64_t expected_;
  std::uint64_t received_ = 0;
  std::uint64_t lost_ = 0;
  std::string failure_;
};

}  // namespace shmbus::bench
