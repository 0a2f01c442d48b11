// libFuzzer entry of the "control" target (fuzz/targets/control_target.hpp).
#include <cstddef>
#include <cstdint>

#include "fuzz/targets/control_target.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return shmbus::fuzz::run_control_input({data, size});
}
