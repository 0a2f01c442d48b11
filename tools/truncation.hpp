// The tools' reads of channels survive a peer that truncates a channel's shared-memory object
// while they read it (shmbus/mapping_guard.hpp): each command holds a MappingGuard while it runs,
// and a read during which the guard caught a truncation fails with what happened, whatever it
// returned (it read zeros where the object had been).
#pragma once

#include <utility>

#include "shmbus/mapping_guard.hpp"
#include "shmbus/result.hpp"

namespace shmbus::tools {

// Runs `read` (a library call returning Result<T> that maps a channel) under the caller's
// MappingGuard; a truncation caught meanwhile becomes its result, as a corrupt error, and sets
// `*truncated` when given.
template <class Read>
auto read_guarded(Read&& read, bool* truncated = nullptr) -> decltype(read()) {
  auto result = std::forward<Read>(read)();
  if (auto truncation = shmbus::detail::MappingGuard::take()) {
    if (truncated != nullptr) *truncated = true;
    return tl::unexpected(Error{ErrorCode::corrupt, shmbus::detail::describe(*truncation)});
  }
  return result;
}

}  // namespace shmbus::tools
