// Helpers shared by the files behind tools/observe_format.hpp (observe_format.cpp, stat_json.cpp,
// stat_text.cpp); not part of that header's interface.
#pragma once

#include <cstddef>
#include <vector>

namespace shmbus::tools::detail {

// v[i], or `fallback` past the end (a rates vector shorter than the read it goes with).
template <class T>
T at_or(const std::vector<T>& v, std::size_t i, T fallback) {
  return i < v.size() ? v[i] : fallback;
}

}  // namespace shmbus::tools::detail
