#include "tools/option_bounds.hpp"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "core/layout.hpp"

namespace shmbus::tools {
namespace {

std::string_view trimmed(std::string_view text) {
  const auto first = text.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  const auto last = text.find_last_not_of(" \t");
  return text.substr(first, last - first + 1);
}

// strtoull reads "-1" as 2^64-1: a value that starts with a minus sign is refused before it.
bool written_negative(std::string_view text) { return trimmed(text).starts_with('-'); }

// A plain decimal number, with no sign, no base prefix and nothing after it.
bool parse_whole_number(std::string_view text, std::uint64_t& out) {
  const std::string digits(trimmed(text));
  if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos) return false;
  errno = 0;
  out = std::strtoull(digits.c_str(), nullptr, 10);
  return errno == 0;
}

// 65536 as "64KiB", 1 << 30 as "1GiB": the largest binary unit that divides the value.
std::string size_text(std::uint64_t bytes) {
  constexpr const char* units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes == 0 || bytes % 1024 != 0) return fmt::format("{}", bytes);
  std::uint64_t value = bytes;
  int unit = -1;
  while (value % 1024 == 0 && unit < 5) {
    value /= 1024;
    ++unit;
  }
  return fmt::format("{}{}", value, units[unit]);
}

}  // namespace

CLI::Validator whole_number_in(std::uint64_t min, std::uint64_t max) {
  return CLI::Validator(
      [min, max](std::string& value) -> std::string {
        std::uint64_t number = 0;
        if (written_negative(value) || !parse_whole_number(value, number) || number < min ||
            number > max) {
          return fmt::format("expected a whole number from {} to {}, got '{}'", min, max, value);
        }
        value = fmt::format("{}", number);  // CLI11 would read "010" as octal
        return {};
      },
      fmt::format("N in [{} - {}]", min, max));
}

CLI::Validator byte_size_in(std::uint64_t min, std::uint64_t max) {
  const CLI::AsSizeValue units(false);
  return CLI::Validator(
      [units, min, max](std::string& value) -> std::string {
        const std::string refused =
            fmt::format("expected a size from {} to {} (bytes, or with a unit: KiB, MiB, GiB), "
                        "got '{}'",
                        size_text(min), size_text(max), value);
        if (written_negative(value)) return refused;
        std::string bytes = value;
        try {
          if (!units(bytes).empty()) return refused;
        } catch (const CLI::ValidationError&) {  // an unknown unit, or more than 2^64 bytes
          return refused;
        }
        std::uint64_t number = 0;
        if (!parse_whole_number(bytes, number) || number < min || number > max) return refused;
        value = bytes;
        return {};
      },
      fmt::format("SIZE in [{} - {}]", size_text(min), size_text(max)));
}

CLI::Validator real_number_in(double min, double max) {
  return CLI::Validator(
      [min, max](std::string& value) -> std::string {
        const std::string text(trimmed(value));
        char* end = nullptr;
        const double number = text.empty() ? NAN : std::strtod(text.c_str(), &end);
        // The comparisons are false for NaN, so NaN is refused with everything out of range.
        if (text.empty() || *end != '\0' || !(number >= min && number <= max)) {
          return fmt::format("expected a number from {} to {}, got '{}'", min, max, value);
        }
        return {};
      },
      fmt::format("X in [{} - {}]", min, max));
}

CLI::Validator ring_capacity_size() {
  return byte_size_in(core::kMinCapacity, core::kMaxCapacity);
}

CLI::Validator max_message_size() { return byte_size_in(1, UINT32_MAX); }

}  // namespace shmbus::tools
