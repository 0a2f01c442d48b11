// A publisher and a block subscriber on one channel, in one process: publishes 1000 quotes, reads
// them back and checks each by sequence and content. Exits 0 when every one arrived intact, in
// order; prints why and exits 1 otherwise. Build it against an installed shmbus (CMakeLists.txt
// here, or `pkg-config --cflags --libs shmbus`).
#include <shmbus/shmbus.hpp>

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

namespace {

struct Quote {
  std::uint64_t id;
  double bid;
  double ask;
};

}  // namespace

int main() {
  const std::string channel = "example.quotes." + std::to_string(::getpid());
  shmbus::ChannelOptions channel_options;
  channel_options.capacity = 1 << 16;
  channel_options.max_message = 256;
  auto pub = shmbus::Publisher::open(channel, channel_options);
  if (!pub) {
    std::fprintf(stderr, "publisher: %s\n", pub.error().message.c_str());
    return 1;
  }
  shmbus::SubscriberOptions subscriber_options;
  subscriber_options.policy = shmbus::Policy::block;
  auto sub = shmbus::Subscriber::open(channel, subscriber_options);
  if (!sub) {
    std::fprintf(stderr, "subscriber: %s\n", sub.error().message.c_str());
    return 1;
  }

  constexpr std::uint64_t kQuotes = 1000;
  std::uint64_t first_sequence = 0;
  std::uint64_t received = 0;
  bool intact = true;
  auto on_quote = [&](const shmbus::Message& m) {
    Quote q;
    if (m.payload.size() != sizeof q) {
      intact = false;
      return;
    }
    std::memcpy(&q, m.payload.data(), sizeof q);
    if (first_sequence == 0) first_sequence = m.sequence;
    const bool in_order = m.sequence == first_sequence + received;
    const bool same = q.id == received && q.bid == 1.0 + q.id && q.ask == 2.0 + q.id;
    if (!in_order || !same || m.lost_before != 0) intact = false;
    ++received;
  };

  for (std::uint64_t id = 0; id < kQuotes; ++id) {
    shmbus::Claim claim;
    // The ring holds far fewer than kQuotes: drain it whenever the subscriber holds us back.
    while (pub->try_claim(sizeof(Quote), claim) != shmbus::PublishStatus::ok) sub->poll(on_quote);
    const Quote q{id, 1.0 + id, 2.0 + id};
    std::memcpy(claim.data(), &q, sizeof q);
    if (pub->commit(claim) != shmbus::PublishStatus::ok) {
      std::fprintf(stderr, "commit failed\n");
      return 1;
    }
  }
  while (received < kQuotes && sub->poll(on_quote) > 0) {
  }
  (void)shmbus::remove_channel(channel);
  if (!intact || received != kQuotes) {
    std::fprintf(stderr, "received %llu of %llu quotes%s\n",
                 static_cast<unsigned long long>(received),
                 static_cast<unsigned long long>(kQuotes), intact ? "" : ", some damaged");
    return 1;
  }
  std::printf("%llu quotes published and received intact, in order\n",
              static_cast<unsigned long long>(received));
  return 0;
}
