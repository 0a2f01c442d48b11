// How the journal writer's parts record errors. A hard error stops the writer for good (every
// call returns it from then on); an error of a finished segment's clean-up is returned once, by
// the next reap(); last_error() always says the newest, including write errors being retried.
#pragma once

#include <optional>
#include <string>
#include <utility>

#include "shmbus/result.hpp"

namespace shmbus::journal {

struct WriterErrors {
  std::optional<Error> stopped_by;  // sticky: the writer cannot go on
  std::optional<Error> to_report;   // returned once by the next reap()
  std::string last_error;
  // errno of the newest failed write: ENOSPC, EDQUOT and EFBIG make a full pool
  // ErrorCode::no_space, anything else ErrorCode::system.
  int last_write_errno = 0;

  bool stopped() const noexcept { return stopped_by.has_value(); }
  void stop(Error error) {
    last_error = error.message;
    if (!stopped_by) stopped_by = std::move(error);
  }
  void report_once(Error error) {
    last_error = error.message;
    to_report = std::move(error);
  }
};

inline tl::unexpected<Error> invalid_argument(std::string message) {
  return tl::unexpected(Error{ErrorCode::invalid_argument, std::move(message)});
}

}  // namespace shmbus::journal
