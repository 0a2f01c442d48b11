// libFuzzer entry of the "cli" target (fuzz/targets/cli_target.hpp).
#include <cstddef>
#include <cstdint>

#include "fuzz/targets/cli_target.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return shmbus::fuzz::run_cli_input({data, size});
}
