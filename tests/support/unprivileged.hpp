// Dropping a forked test child's privileges, for the hostile cases of the trust model
// (docs/security.md): the tests run as root, whom file modes do not stop, so a child that plays
// an untrusted reader becomes the user nobody first.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace shmbus::test {

// Whether the test runs as root, so that it can become nobody (tests skip otherwise).
bool can_drop_privileges();

// Becomes nobody, with group `group` (default nogroup) and no supplementary groups, for good
// (real, effective and saved ids). False if that failed.
bool become_nobody(std::optional<gid_t> group = std::nullopt);

// nogroup's gid (nobody's primary group).
gid_t nogroup_gid();

// `argv` prefixed so that it runs as nobody:nogroup without supplementary groups (setpriv).
std::vector<std::string> as_nobody(const std::vector<std::string>& argv);

}  // namespace shmbus::test
