// `shmbus rm` and `shmbus gc` say what really happened to each object. Run by a user who may not
// unlink a channel's objects (/dev/shm is sticky: only their owner or root may), they used to print
// "removed" and exit 0 while the objects stayed. Now each object that stayed is named with the
// reason, nothing claims it was removed, and the exit code is 1. unlink_channel's report and
// remove_channel's error say the same in the library.
//
// The channel is created by root (the tests run as root) with mode 0666, so that the other user
// (nobody, through setpriv) can read it and gets as far as the unlink.
#include <fcntl.h>
#include <grp.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <ctime>
#include <string>
#include <vector>

#include "shmbus/shmbus.hpp"
#include "shmbus/stats.hpp"
#include "tests/support/command.hpp"
#include "tests/support/process.hpp"

namespace {

using namespace std::chrono_literals;
using shmbus::test::channel_objects;
using shmbus::test::ChannelGuard;
using shmbus::test::Child;
using shmbus::test::RunResult;
using shmbus::test::run_command;
using shmbus::test::unique_channel;

constexpr uid_t kNobody = 65534;
constexpr gid_t kNogroup = 65534;

// `shmbus ARGS...` as nobody; stdout, then stderr after a line "--stderr--".
RunResult cli_as_nobody(const std::vector<std::string>& args) {
  std::vector<std::string> argv{
      "/bin/sh", "-c",
      "err=$(mktemp) && out=$(setpriv --reuid=nobody --regid=nogroup --clear-groups \"$@\" "
      "2>\"$err\"); rc=$?; printf '%s\\n--stderr--\\n' \"$out\"; cat \"$err\"; rm -f \"$err\"; "
      "exit $rc",
      "sh", SHMBUS_CLI};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv, 10s);
}

std::string stdout_of(const RunResult& r) { return r.out.substr(0, r.out.find("--stderr--")); }
std::string stderr_of(const RunResult& r) {
  const auto at = r.out.find("--stderr--\n");
  return at == std::string::npos ? std::string() : r.out.substr(at + 11);
}

class RemoveOutcome : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root, to act as another user";
    // Created by a process that is gone, so that the channel is abandoned and rm needs no --force.
    Child creator = Child::fork([&] {
      shmbus::ChannelOptions options;
      options.mode = 0666;  // nobody may read it, and so get as far as the unlink
      return shmbus::Publisher::open(channel_.name(), options) ? 0 : 1;
    });
    const auto created = creator.wait(10s);
    ASSERT_TRUE(created && created->ok());
    ASSERT_EQ(channel_objects(channel_.name()).size(), 4u);
  }
  const std::string& name() const { return channel_.name(); }

  ChannelGuard channel_{unique_channel("rm-perm")};
};

TEST_F(RemoveOutcome, RmByAUserWhoMayNotUnlinkNamesEachObjectThatStayedAndExitsOne) {
  const RunResult r = cli_as_nobody({"rm", name()});
  EXPECT_TRUE(r.status.exited) << r.status.describe();
  EXPECT_EQ(r.status.code, 1) << r.out;
  EXPECT_EQ(stdout_of(r).find("removed"), std::string::npos) << r.out;
  const std::string err = stderr_of(r);
  for (const std::string& object : channel_objects(name())) {
    EXPECT_NE(err.find("shmbus rm: cannot remove shared memory '/dev/shm/" + object +
                       "': Operation not permitted"),
              std::string::npos)
        << object << "\n" << err;
  }
  EXPECT_NE(err.find("shmbus rm: channel '" + name() + "' was not removed: 4 of its 4 objects "
                     "remain"),
            std::string::npos)
      << err;
  EXPECT_EQ(channel_objects(name()).size(), 4u) << "the objects are still there";

  // Its owner removes it, as before.
  const RunResult owner = run_command({SHMBUS_CLI, "rm", name()}, 10s);
  EXPECT_TRUE(owner.status.ok()) << owner.status.describe();
  EXPECT_EQ(owner.out, "removed channel " + name() + "\n");
  EXPECT_TRUE(channel_objects(name()).empty());
}

TEST_F(RemoveOutcome, GcByAUserWhoMayNotUnlinkNamesTheChannelThatStayedAndExitsOne) {
  const RunResult r = cli_as_nobody({"gc"});
  EXPECT_TRUE(r.status.exited) << r.status.describe();
  EXPECT_EQ(r.status.code, 1) << r.out;
  EXPECT_EQ(stdout_of(r).find("removed channel " + name()), std::string::npos) << r.out;
  const std::string err = stderr_of(r);
  const std::vector<std::string> objects = channel_objects(name());
  ASSERT_EQ(objects.size(), 4u) << "the objects are still there";
  EXPECT_NE(err.find("shmbus gc: channel '" + name() + "' was not removed: cannot remove shared "
                     "memory '/dev/shm/"),
            std::string::npos)
      << err;
  for (const std::string& object : objects) {
    EXPECT_NE(err.find("'/dev/shm/" + object + "': Operation not permitted"), std::string::npos)
        << object << "\n" << err;
  }
}

TEST_F(RemoveOutcome, GcByAUserWhoMayNotUnlinkALeftoverNamesItAndExitsOne) {
  // A control segment whose ring is gone, two minutes old: a leftover for gc.
  const ChannelGuard gone(name() + "-gone");  // removes the leftover at the end
  const std::string leftover = "shmbus." + gone.name() + ".ctl.00000000deadbeef";
  const int fd = ::shm_open(leftover.c_str(), O_CREAT | O_EXCL | O_RDWR, 0666);
  ASSERT_GE(fd, 0) << leftover;
  ::close(fd);
  const timespec old[2] = {{::time(nullptr) - 120, 0}, {::time(nullptr) - 120, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, ("/dev/shm/" + leftover).c_str(), old, 0), 0);

  const RunResult r = cli_as_nobody({"gc"});
  EXPECT_TRUE(r.status.exited) << r.status.describe();
  EXPECT_EQ(r.status.code, 1) << r.out;
  EXPECT_EQ(stdout_of(r).find("removed leftover " + leftover), std::string::npos) << r.out;
  EXPECT_NE(stderr_of(r).find("shmbus gc: cannot remove shared memory '/dev/shm/" + leftover +
                              "': Operation not permitted"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(::access(("/dev/shm/" + leftover).c_str(), F_OK), 0) << "the leftover is still there";
}

// The library: unlink_channel reports each object's outcome, remove_channel fails naming them.
TEST_F(RemoveOutcome, UnlinkChannelReportsEveryObjectThatCouldNotBeUnlinked) {
  const std::vector<std::string> objects = channel_objects(name());
  Child child = Child::fork([&] {
    if (::setgroups(0, nullptr) != 0 || ::setgid(kNogroup) != 0 || ::setuid(kNobody) != 0) {
      return 10;
    }
    auto report = shmbus::unlink_channel(name());
    if (!report) return 11;
    if (report->complete() || report->objects.size() != 4) return 12;
    for (const shmbus::RemovedObject& o : report->objects) {
      if (!o.error || o.error->code != shmbus::ErrorCode::permission_denied) return 13;
      std::printf("%s: %s\n", o.object.c_str(), o.error->message.c_str());
    }
    auto removed = shmbus::remove_channel(name());
    if (removed || removed.error().code != shmbus::ErrorCode::permission_denied) return 14;
    std::printf("remove_channel: %s\n", removed.error().message.c_str());
    std::fflush(stdout);
    return 0;
  });
  const auto status = child.wait(10s);
  ASSERT_TRUE(status.has_value());
  ASSERT_TRUE(status->ok()) << status->describe() << "\n" << child.output();
  const std::string out = child.output();
  // Every object is named with its reason, in the report and in remove_channel's error.
  const std::size_t summary = out.find("remove_channel: channel '" + name() + "' was not removed: ");
  ASSERT_NE(summary, std::string::npos) << out;
  for (const std::string& object : objects) {
    const std::string reason =
        "cannot remove shared memory '/dev/shm/" + object + "': Operation not permitted";
    EXPECT_NE(out.find(object + ": " + reason + "\n"), std::string::npos) << object << "\n" << out;
    EXPECT_NE(out.find(reason, summary), std::string::npos) << object << "\n" << out;
  }
  EXPECT_EQ(channel_objects(name()).size(), 4u);
}

}  // namespace
