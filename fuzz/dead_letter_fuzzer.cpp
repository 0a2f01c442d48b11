// libFuzzer entry of the "dead_letter" target (fuzz/targets/dead_letter_target.hpp).
#include <cstddef>
#include <cstdint>

#include "fuzz/targets/dead_letter_target.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return shmbus::fuzz::run_dead_letter_input({data, size});
}
