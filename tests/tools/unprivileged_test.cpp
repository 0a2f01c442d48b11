// The `shmbus` command run as the user nobody (setpriv) against a channel root created world-
// readable: it may tail with drop, is refused the block policy naming the trust model, and can
// remove nothing (docs/security.md).
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "shmbus/shmbus.hpp"
#include "tests/support/command.hpp"
#include "tests/support/process.hpp"
#include "tests/support/unprivileged.hpp"

namespace shmbus {
namespace {

using namespace shmbus::test;
using namespace std::chrono_literals;

// Root publishes `count` lines to a new channel of mode 0644 with the command itself.
void publish_world_readable(const ChannelGuard& ch, int count) {
  const RunResult pub = run_command({SHMBUS_CLI, "pub", ch.name(), "--count", std::to_string(count),
                                     "--mode", "0644", "-q"});
  ASSERT_TRUE(pub.status.ok()) << pub.status.describe();
}

TEST(UnprivilegedCli, NobodyTailsAWorldReadableChannelWithDrop) {
  if (!can_drop_privileges()) GTEST_SKIP() << "needs root to become nobody";
  ChannelGuard ch(unique_channel("nobody-tail"));
  publish_world_readable(ch, 5);
  const RunResult tail = run_command(as_nobody(
      {SHMBUS_CLI, "tail", ch.name(), "--from", "earliest", "--count", "5", "--format", "json"}));
  ASSERT_TRUE(tail.status.ok()) << tail.status.describe() << "\n" << tail.out;
  const auto lines = lines_of(tail.out);
  ASSERT_EQ(lines.size(), 5u) << tail.out;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    EXPECT_NE(lines[i].find("\"seq\":" + std::to_string(i + 1)), std::string::npos) << lines[i];
  }
}

TEST(UnprivilegedCli, NobodyIsRefusedTheBlockPolicyNamingTheTrustModel) {
  if (!can_drop_privileges()) GTEST_SKIP() << "needs root to become nobody";
  ChannelGuard ch(unique_channel("nobody-block"));
  publish_world_readable(ch, 1);
  const RunResult tail = run_command(with_stderr_captured(as_nobody(
      {SHMBUS_CLI, "tail", ch.name(), "--policy", "block", "--count", "1", "--timeout-ms",
       "200"})));
  EXPECT_EQ(tail.status.code, 1) << tail.status.describe() << "\n" << tail.out;
  EXPECT_NE(tail.out.find("docs/security.md"), std::string::npos) << tail.out;
}

TEST(UnprivilegedCli, NobodyCannotPublishRecordOrRemoveTheChannel) {
  if (!can_drop_privileges()) GTEST_SKIP() << "needs root to become nobody";
  ChannelGuard ch(unique_channel("nobody-rm"));
  publish_world_readable(ch, 1);
  EXPECT_EQ(run_command(as_nobody({SHMBUS_CLI, "pub", ch.name(), "--count", "1", "-q"}))
                .status.code,
            1);
  const RunResult gc = run_command(with_stderr_captured(as_nobody({SHMBUS_CLI, "gc", ch.name()})));
  EXPECT_FALSE(gc.status.ok()) << gc.out;
  EXPECT_FALSE(run_command(as_nobody({SHMBUS_CLI, "gc", ch.name(), "--force"})).status.ok());
  // Still there, whole: root publishes again.
  const RunResult again = run_command({SHMBUS_CLI, "pub", ch.name(), "--count", "1", "-q"});
  EXPECT_TRUE(again.status.ok()) << again.status.describe();
}

}  // namespace
}  // namespace shmbus
