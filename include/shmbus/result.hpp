// Error and Result: what every setup call of shmbus returns. Hot-path calls return small status
// codes instead (see publisher.hpp and subscriber.hpp); nothing here allocates unless it fails.
#pragma once

#include <string>

#include <tl/expected.hpp>

namespace shmbus {

enum class ErrorCode {
  invalid_argument,
  not_found,
  permission_denied,
  no_space,
  version_mismatch,  // the segment was written by another layout version or build
  corrupt,           // the segment holds values no shmbus writer produces
  busy,              // e.g. a named subscriber already attached in a live process
  timed_out,
  system,            // any other OS error; the message carries errno's text
};

// `message` names the channel or file and what is wrong, ready to show an operator.
struct Error {
  ErrorCode code;
  std::string message;
};

template <class T>
using Result = tl::expected<T, Error>;

}  // namespace shmbus
