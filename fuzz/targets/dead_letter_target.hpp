// Fuzz target "dead_letter": the input is one record of a dead-letter channel, as a consumer
// group, a buggy peer or a hostile hand may have published it. Covers shmbus::decode
// (include/shmbus/dead_letter.hpp) and, for what decodes, the round trip (encoding the letter
// again gives the input byte for byte) and what `shmbus dlq` prints of it (tools/dlq_format.hpp:
// ls's text and JSON lines, show's text with its hex dump).
#pragma once

#include <cstdlib>
#include <cstring>
#include <vector>

#include "fuzz/targets/fuzz_support.hpp"
#include "shmbus/dead_letter.hpp"
#include "tools/dlq_format.hpp"

namespace shmbus::fuzz {

inline int run_dead_letter_input(Input input) {
  // An exact-size copy: AddressSanitizer sees any read past the record.
  const std::vector<std::byte> record(reinterpret_cast<const std::byte*>(input.data()),
                                      reinterpret_cast<const std::byte*>(input.data()) +
                                          input.size());
  auto letter = decode(record);
  if (!letter) {
    consume(letter.error().message);
    return 0;
  }
  // A decoded letter is the input, no more and no less: encoding it again gives the same bytes.
  const std::size_t size = encoded_size(*letter);
  if (size != record.size()) std::abort();
  std::vector<std::byte> again(size);
  if (encode(*letter, again) != size) std::abort();
  if (size != 0 && std::memcmp(again.data(), record.data(), size) != 0) std::abort();

  const tools::DlqPlace place{1, false};
  consume(tools::dlq_line(place, *letter, false));
  consume(tools::dlq_line(place, *letter, true, true));
  consume(tools::dlq_show_text("fuzz.dlq", place, *letter));
  return 0;
}

}  // namespace shmbus::fuzz
