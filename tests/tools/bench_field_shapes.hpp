// Shape checks of `shmbus bench`'s metadata fields, shared by its tests. Hand-written instead of
// std::regex: GCC 12's <regex> trips -Werror=maybe-uninitialized in the sanitizer build.
#pragma once

#include <cctype>
#include <string>
#include <string_view>

namespace shmbus::test {

// `text` has the shape of `pattern`, where '9' stands for any digit and every other character for
// itself: "9999-99-99T99:99:99Z" is an ISO 8601 UTC time to the second.
inline bool has_shape(std::string_view text, std::string_view pattern) {
  if (text.size() != pattern.size()) return false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const bool digit = std::isdigit(static_cast<unsigned char>(text[i])) != 0;
    if (pattern[i] == '9' ? !digit : text[i] != pattern[i]) return false;
  }
  return true;
}

inline bool is_utc_date(std::string_view text) { return has_shape(text, "9999-99-99T99:99:99Z"); }

// MAJOR.MINOR.PATCH, each one or more digits.
inline bool is_version(std::string_view text) {
  int parts = 1;
  bool digits_in_part = false;
  for (const char c : text) {
    if (c == '.') {
      if (!digits_in_part) return false;
      ++parts;
      digits_in_part = false;
    } else if (std::isdigit(static_cast<unsigned char>(c)) != 0) {
      digits_in_part = true;
    } else {
      return false;
    }
  }
  return parts == 3 && digits_in_part;
}

}  // namespace shmbus::test
