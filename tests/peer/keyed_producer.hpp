// The keyed producer role of the peer program (tests/peer/test_peer.cpp):
//
//   produce-keyed   publishes --count records of the keyed proof (tests/support/keyed_records.hpp)
//                   over --keys keys, each with its key and message type (Publisher::publish with
//                   a RecordTag), each publish waiting up to --timeout-ms.
//
// Prints "READY ..." once attached and last "RESULT role=produce-keyed published=N ..."; exit code
// 0 when all went out, 2 otherwise.
#pragma once

#include <cstdint>
#include <string>

#include <CLI/CLI.hpp>

#include "tests/support/payload.hpp"

namespace shmbus::test::peer {

struct KeyedProducerArgs {
  std::string channel;
  std::uint32_t producer_id = 1;
  std::uint64_t count = 1000;
  std::uint32_t keys = 64;
  SizeRule sizes;
  std::uint64_t timeout_ms = 60000;
};

CLI::App* add_keyed_producer_command(CLI::App& app, KeyedProducerArgs& args);

int keyed_producer(const KeyedProducerArgs& args);

}  // namespace shmbus::test::peer
