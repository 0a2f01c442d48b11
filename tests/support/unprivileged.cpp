#include "tests/support/unprivileged.hpp"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

namespace shmbus::test {

bool can_drop_privileges() { return ::geteuid() == 0 && ::getpwnam("nobody") != nullptr; }

gid_t nogroup_gid() {
  const struct group* g = ::getgrnam("nogroup");
  return g != nullptr ? g->gr_gid : 65534;
}

bool become_nobody(std::optional<gid_t> group) {
  const struct passwd* nobody = ::getpwnam("nobody");
  if (nobody == nullptr) return false;
  const gid_t gid = group.value_or(nogroup_gid());
  return ::setgroups(0, nullptr) == 0 && ::setresgid(gid, gid, gid) == 0 &&
         ::setresuid(nobody->pw_uid, nobody->pw_uid, nobody->pw_uid) == 0;
}

std::vector<std::string> as_nobody(const std::vector<std::string>& argv) {
  std::vector<std::string> out{"/usr/bin/setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"};
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

}  // namespace shmbus::test
