/* include/shmbus/shmbus.h compiles as strict C99 with every warning (tests/capi/CMakeLists.txt). */
#include "shmbus/shmbus.h"

int capi_header_c99_compiles(void);
int capi_header_c99_compiles(void) { return SHMBUS_C_ABI_VERSION; }
