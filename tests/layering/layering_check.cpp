// shmbus_layering_check ROOT: prints every include that reaches a higher floor and exits 1 if
// there is one. The build runs it over the source tree (CMakeLists.txt).
#include <cstdio>

#include "tests/layering/layering.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: shmbus_layering_check SOURCE_ROOT\n");
    return 2;
  }
  const auto violations = shmbus::layering::check_tree(argv[1]);
  for (const auto& v : violations) std::fprintf(stderr, "layering: %s\n", v.message.c_str());
  return violations.empty() ? 0 : 1;
}
