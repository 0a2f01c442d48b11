// Bounds for the numeric options of the `shmbus` subcommands, each with a clear error and its
// range stated in the help. Every unsigned option goes through one of these: CLI11 parses an
// unsigned with strtoull, which takes "-1" as 2^64-1 (a count that never ends, a segment size
// that cannot be allocated), so the text is checked for a minus sign before it is converted.
#pragma once

#include <cstdint>
#include <limits>

#include <CLI/CLI.hpp>

namespace shmbus::tools {

// The largest value of an unsigned 64-bit option that has no smaller natural bound.
inline constexpr std::uint64_t kMaxU64 = std::numeric_limits<std::uint64_t>::max();

// A whole decimal number from `min` to `max` (a count, a sequence); for transform(): the text
// becomes the plain decimal number.
CLI::Validator whole_number_in(std::uint64_t min, std::uint64_t max);

// A size in bytes from `min` to `max`, plain (65536) or with a unit (64KiB, 256MiB; KB is 1024
// too); for transform(): the text becomes the number of bytes.
CLI::Validator byte_size_in(std::uint64_t min, std::uint64_t max);

// A real number from `min` to `max` (NaN refused); for check().
CLI::Validator real_number_in(double min, double max);

// A channel's --capacity (the ring's limits; that it is a power of two is the channel's check)
// and --max-message, for the commands that may create the channel.
CLI::Validator ring_capacity_size();
CLI::Validator max_message_size();

}  // namespace shmbus::tools
