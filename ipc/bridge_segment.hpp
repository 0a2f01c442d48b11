// A NATS JetStream bridge's shared-memory object (ipc/bridge_layout.hpp):
// "shmbus.<channel>.ctl.<incarnation 16 hex>.bridge-<out|in>.<stream>", one per bridge of a channel
// incarnation. The bridge process creates and owns it (fenced: a second live bridge of the same
// role and stream is refused); `shmbus stat` reads it (read_bridge_stats); it lives as long as the
// ring incarnation it describes, and `shmbus rm`/`gc` remove it with the channel.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ipc/bridge_layout.hpp"
#include "ipc/shm_segment.hpp"
#include "shmbus/options.hpp"
#include "shmbus/result.hpp"

namespace shmbus::detail {

enum class BridgeRole : std::uint8_t { out = 1, in = 2 };
enum class BridgeState : std::uint8_t {
  connecting = 1,
  running,
  recovering,
  holding_back,
  stopped,
};
const char* bridge_role_name(BridgeRole role) noexcept;    // "out", "in"
const char* bridge_state_name(BridgeState state) noexcept;  // "connecting", ..., "holding back"

struct BridgeSettings {
  BridgeRole role = BridgeRole::out;
  std::string stream;   // names the object; [A-Za-z0-9_-], 1-63 characters (JetStream's rules)
  std::string subject;  // at most kBridgeTextSize - 1 bytes each
  std::string url;
  std::string host;
};

// "shmbus.<channel>.ctl.<incarnation>.bridge-" and the full name for a role and stream.
std::string bridge_object_prefix(std::string_view channel, std::uint64_t incarnation);
std::string bridge_object_name(std::string_view channel, std::uint64_t incarnation,
                               BridgeRole role, std::string_view stream);
// The names of every bridge object of one channel incarnation, after the prefix ("out.S", "in.S"),
// sorted (listed from /dev/shm).
std::vector<std::string> list_bridge_names(std::string_view channel, std::uint64_t incarnation);

// A stream name a bridge object may carry: 1 to kBridgeStreamSize - 1 of [A-Za-z0-9_-].
bool valid_bridge_stream(std::string_view stream) noexcept;

// Checks a mapped bridge object before a byte of it is trusted: size, magic, version and
// fingerprint, readiness, the channel incarnation, role and stream.
Result<void> validate_bridge(const ShmSegment& segment, std::uint64_t incarnation,
                             const std::string& where);

class BridgeSegment {
 public:
  // Creates the object, or reopens the one a previous (dead) bridge of the same role and stream
  // left (its counters and positions kept, its settings rewritten); refuses with `busy` when its
  // owner is still alive (another bridge runs: fencing), with `corrupt` when it is damaged.
  static Result<BridgeSegment> open_owned(const ChannelInfo& channel,
                                          const BridgeSettings& settings);

  BridgeSegment(BridgeSegment&&) noexcept;
  BridgeSegment& operator=(BridgeSegment&&) noexcept;
  // Marks the bridge stopped and gives up the ownership (another bridge may take it at once).
  ~BridgeSegment();

  // The counters the bridge bumps (relaxed atomics, ipc/bridge_layout.hpp).
  BridgeCounters& counters() noexcept;
  // The state and the last error (truncated to kBridgeTextSize - 1 bytes), seqlocked together.
  void set_state(BridgeState state, std::string_view last_error = {}) noexcept;
  // Stores the time now as the bridge's last sign of life.
  void heartbeat() noexcept;

  // Bridge in's persistent applied position (seqlocked; survives a kill -9 of bridge in).
  using InPosition = BridgeInPosition;
  InPosition applied() const noexcept;
  void set_applied(const InPosition& position) noexcept;
  // What bridge in is about to commit: written after the claim, before the commit.
  InPosition intent() const noexcept;
  void set_intent(const InPosition& position) noexcept;

  // The object's name (the mapping may have been made under a staging name).
  const std::string& name() const noexcept { return name_; }

 private:
  BridgeSegment() = default;
  BridgeHeader& header() const noexcept;
  void close() noexcept;  // the destructor's work; leaves the object unmapped
  ShmSegment segment_;
  std::string name_;
};

// Readers' side (read_bridge_stats, tests): consistent copies of the seqlocked records.
// The state byte and the last error; an empty string on success, else what is wrong (the writer
// kept changing it or died mid-write, or a length out of range).
std::string read_bridge_text(const BridgeText& text, std::uint64_t& state,
                             std::string& last_error);
// Subject, url and host; an empty string on success, else what is wrong.
std::string read_bridge_settings(const BridgeSettingsText& text, BridgeSettings& out);
// The newest consistent copy of a position record (zeros if none was ever written).
BridgeInPosition read_bridge_position(const BridgePositionRecord& record) noexcept;

}  // namespace shmbus::detail
