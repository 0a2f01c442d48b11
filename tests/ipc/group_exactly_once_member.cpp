// The member process of tests/ipc/group_exactly_once_test.cpp: joins a group, folds the records
// it is given into a checkpointed state with the exactly-once helper (file store), and exits once
// the group has retired every record. The test kills it with kill -9 at random moments, stops it
// past the ack timeout, and starts it again under the same name.
//
//   shmbus_group_eo_member --channel C --group G --dir D --name N --records R
//                          [--batch B] [--ack-timeout-ms T]
//
// It writes (with write(2), so nothing sits in a buffer when it is killed) "READY" once joined,
// "DONE applied=.. skipped=.. dropped=.. commits=.." at the end, "ERROR <text>" on failure
// (exit 1).
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>

#include <CLI/CLI.hpp>

#include "shmbus/exactly_once.hpp"
#include "shmbus/group_consumer.hpp"
#include "tests/ipc/group_exactly_once_fold.hpp"

namespace {

using namespace std::chrono_literals;
using shmbus::test::eo::Totals;

void emit(const std::string& line) {
  const std::string s = line + "\n";
  const char* p = s.data();
  std::size_t left = s.size();
  while (left > 0) {
    const ssize_t n = ::write(1, p, left);
    if (n <= 0) return;
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

int fail(const std::string& what) {
  emit("ERROR " + what);
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string channel, group, dir, name;
  std::uint64_t records = 0;
  std::size_t batch = 256;
  std::int64_t ack_timeout_ms = 500;
  CLI::App app{"exactly-once group member for tests"};
  app.add_option("--channel", channel)->required();
  app.add_option("--group", group)->required();
  app.add_option("--dir", dir)->required();
  app.add_option("--name", name)->required();
  app.add_option("--records", records)->required();
  app.add_option("--batch", batch);
  app.add_option("--ack-timeout-ms", ack_timeout_ms);
  CLI11_PARSE(app, argc, argv);

  // The previous incarnation under this name was killed and reaped before this one started, so
  // its lock is already gone; busy would mean two live members with one name.
  auto store = shmbus::CheckpointDirectory::open(dir, name);
  if (!store) return fail(store.error().message);

  shmbus::GroupOptions options;
  options.policy = shmbus::Policy::block;
  options.start = shmbus::StartFrom::earliest;
  options.ack_timeout = std::chrono::milliseconds(ack_timeout_ms);
  options.max_attempts = 1000;  // members killed before committing must not dead-letter records
  options.window = 4096;
  options.open_timeout = 5000ms;
  auto member = shmbus::GroupConsumer::open(channel, group, options);
  if (!member) return fail(member.error().message);

  auto eo = shmbus::ExactlyOnce<Totals>::open(*member, *store, batch);
  if (!eo) return fail(eo.error().message);
  emit("READY");

  // Records are sequences 1..records: done once every one of them is retired.
  while (member->retired_through() <= records) {
    member->wait(50ms);
    auto done = eo->process(shmbus::test::eo::apply);
    if (!done) return fail(done.error().message);
    if (member->status() == shmbus::GroupStatus::corrupt) return fail(member->last_error());
  }
  const auto& c = eo->counters();
  emit("DONE applied=" + std::to_string(c.applied) + " skipped=" + std::to_string(c.skipped) +
       " dropped=" + std::to_string(c.dropped) + " commits=" + std::to_string(c.commits) +
       " late_acks=" + std::to_string(c.late_acks));
  return 0;
}
