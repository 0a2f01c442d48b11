// libFuzzer entry of the "ring" target (fuzz/targets/ring_target.hpp).
#include <cstddef>
#include <cstdint>

#include "fuzz/targets/ring_target.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return shmbus::fuzz::run_ring_input({data, size});
}
