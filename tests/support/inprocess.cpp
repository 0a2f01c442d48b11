#include "tests/support/inprocess.hpp"

#include <cstring>
#include <iterator>

namespace shmbus::test {

ChannelOptions small_options() {
  ChannelOptions o;
  o.capacity = 64 << 10;
  o.max_message = 1024;
  o.open_timeout = std::chrono::milliseconds(500);
  return o;
}

SubscriberOptions sub_options(Policy policy, StartFrom start) {
  SubscriberOptions o;
  o.policy = policy;
  o.start = start;
  o.open_timeout = std::chrono::milliseconds(200);
  return o;
}

std::vector<std::byte> bytes_of(std::string_view text) {
  std::vector<std::byte> v(text.size());
  std::memcpy(v.data(), text.data(), text.size());
  return v;
}

std::vector<Received> receive_messages(Subscriber& sub, std::size_t want,
                                       std::chrono::milliseconds timeout) {
  std::vector<Received> got;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (got.size() < want && std::chrono::steady_clock::now() < deadline) {
    const std::size_t n = sub.poll(
        [&](const Message& m) {
          got.push_back(Received{
              m.sequence, m.lost_before,
              std::string(reinterpret_cast<const char*>(m.payload.data()), m.payload.size())});
        },
        want - got.size());
    if (n == 0) sub.wait(std::chrono::milliseconds(20));
  }
  return got;
}

std::vector<std::string> receive(Subscriber& sub, std::size_t want,
                                 std::chrono::milliseconds timeout) {
  std::vector<std::string> out;
  for (Received& r : receive_messages(sub, want, timeout)) out.push_back(std::move(r.payload));
  return out;
}

}  // namespace shmbus::test

namespace shmbus {

void PrintTo(Policy policy, std::ostream* os) { *os << to_string(policy); }

void PrintTo(PollStatus status, std::ostream* os) {
  switch (status) {
    case PollStatus::ok: *os << "ok"; return;
    case PollStatus::corrupt: *os << "corrupt"; return;
    case PollStatus::evicted: *os << "evicted"; return;
    case PollStatus::journal_unavailable: *os << "journal_unavailable"; return;
  }
  *os << "PollStatus(" << static_cast<int>(status) << ")";
}

void PrintTo(PublishStatus status, std::ostream* os) { *os << to_string(status); }

void PrintTo(ErrorCode code, std::ostream* os) {
  static const char* const names[] = {"invalid_argument", "not_found",        "permission_denied",
                                      "no_space",         "version_mismatch", "corrupt",
                                      "busy",             "timed_out",        "system"};
  const auto i = static_cast<std::size_t>(code);
  if (i < std::size(names)) {
    *os << names[i];
  } else {
    *os << "ErrorCode(" << i << ")";
  }
}

}  // namespace shmbus
