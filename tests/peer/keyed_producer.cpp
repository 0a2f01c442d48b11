#include "tests/peer/keyed_producer.hpp"

#include <unistd.h>

#include <chrono>
#include <vector>

#include "shmbus/publisher.hpp"
#include "tests/support/keyed_records.hpp"

#include "tests/peer/peer_output.hpp"

namespace shmbus::test::peer {
namespace {

std::string str(std::uint64_t v) { return std::to_string(v); }

}  // namespace

CLI::App* add_keyed_producer_command(CLI::App& app, KeyedProducerArgs& a) {
  auto* cmd = app.add_subcommand("produce-keyed", "publish the keyed proof's records");
  cmd->add_option("--channel", a.channel)->required();
  cmd->add_option("--producer-id", a.producer_id);
  cmd->add_option("--count", a.count);
  cmd->add_option("--keys", a.keys)->check(CLI::Range(1U, 1U << 20));
  cmd->add_option("--timeout-ms", a.timeout_ms, "per publish");
  cmd->add_option("--seed", a.sizes.seed, "size seed");
  cmd->add_option("--min-size", a.sizes.min_size, "smallest payload");
  cmd->add_option("--max-size", a.sizes.max_size, "largest payload");
  return cmd;
}

int keyed_producer(const KeyedProducerArgs& a) {
  auto pub = Publisher::open(a.channel);
  if (!pub) {
    say("ERROR open: " + pub.error().message);
    say("RESULT role=produce-keyed published=0 errors=1");
    return 2;
  }
  say("READY incarnation=" + str(pub->info().incarnation));
  const auto timeout = std::chrono::milliseconds(a.timeout_ms);
  for (std::uint64_t c = 0; c < a.count; ++c) {
    const std::vector<std::byte> payload = keyed_payload(a.producer_id, c, a.keys, a.sizes);
    const std::string key = key_name(keyed_record(c, a.keys).key);
    const RecordTag tag{std::as_bytes(std::span(key.data(), key.size())), kKeyedType};
    const PublishStatus st = pub->publish(payload, tag, timeout);
    if (st != PublishStatus::ok) {
      say("ERROR record " + str(c) + ": " + to_string(st));
      say("RESULT role=produce-keyed published=" + str(c) + " errors=1");
      return 2;
    }
  }
  say("RESULT role=produce-keyed published=" + str(a.count) + " errors=0");
  return 0;
}

}  // namespace shmbus::test::peer
