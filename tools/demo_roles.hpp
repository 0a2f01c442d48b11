// The processes of `shmbus demo` and the board they report on. Every role runs in its own forked
// process. Sinks (the subscribers; later the journaler) start first and say when they are
// attached; sources (the publisher) start once every sink is ready, so that sinks see the first
// message. To add a process to the demo, add a DemoRole to demo_roles(): cmd_demo.cpp starts,
// watches and judges whatever is in that list.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace shmbus::tools {

struct DemoConfig {
  std::string channel;
  std::uint64_t messages = 0;
  double rate = 0;          // messages per second
  std::string journal_dir;  // where the journaler records the channel
};

enum class RoleState : std::uint32_t { starting, ready, done, failed };

// One process's report, on its own cache line, written only by that process. Relaxed stores: the
// parent reads them for display while the process runs, and for the verdict after waitpid(),
// which orders everything the child wrote before it.
struct alignas(64) RoleReport {
  std::atomic<RoleState> state{RoleState::starting};
  std::atomic<std::uint64_t> count{0};          // published (source) or received (sink)
  std::atomic<std::uint64_t> lost{0};           // sink: the sum of Message::lost_before
  std::atomic<std::uint64_t> last_sequence{0};  // the highest sequence published or received
  std::atomic<std::uint64_t> bad_payloads{0};   // size, counter or checksum wrong
  std::atomic<std::uint64_t> order_errors{0};   // not increasing, or a gap not counted as lost
  std::atomic<std::uint64_t> spilled{0};        // spill sink: received from the journal files
  std::atomic<std::uint64_t> durable{0};        // journaler: durable through this sequence
};

inline constexpr std::size_t kMaxDemoRoles = 8;

// The drop and spill subscribers' pauses. At 100k msg/s of 16..512 bytes the 64 KiB ring holds
// about 2 ms of messages, so a 3 ms pause gets them lapped every time (1 ms only now and then).
inline constexpr std::uint64_t kDropPauseEvery = 1000;
inline constexpr auto kDropPause = std::chrono::milliseconds(3);

// Shared by the demo's processes: an anonymous shared mapping made before they are forked.
struct DemoBoard {
  std::atomic<std::uint32_t> stop{0};            // parent: stop now (interrupted, or too late)
  std::atomic<std::uint32_t> sources_exited{0};  // parent: no source runs any more; idle sinks end
  RoleReport reports[kMaxDemoRoles];
};

enum class RoleKind : std::uint8_t { source, sink };

// What a verdict is judged against.
struct DemoTotals {
  std::uint64_t expected = 0;   // messages the sources were asked to publish
  std::uint64_t published = 0;  // messages the sources did publish
};

struct DemoRole {
  std::string name;
  RoleKind kind;
  std::string policy;  // for the table: "block", "drop", or "-"
  std::string about;   // one line for the demo's introduction
  // Runs in the forked process; returns its exit code. Sets report.state to ready once attached.
  std::function<int(const DemoConfig&, DemoBoard&, RoleReport&)> body;
  // After every process exited: empty if this role's report passes, else what is wrong.
  std::function<std::string(const RoleReport&, const DemoTotals&)> verdict;
};

// The demo's processes: the journaler, a block subscriber, a drop subscriber and a spill
// subscriber that both pause every 1000 messages for longer than the ring lasts at the demo's rate
// (so that the producer laps them: the drop one counts its losses, the spill one catches up from
// the journal and loses nothing), and the publisher.
std::vector<DemoRole> demo_roles();

}  // namespace shmbus::tools
