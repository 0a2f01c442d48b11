// libFuzzer entry of the "journal" target (fuzz/targets/journal_target.hpp).
#include <cstddef>
#include <cstdint>

#include "fuzz/targets/journal_target.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return shmbus::fuzz::run_journal_input({data, size});
}
