# libshmbus.so: the objects of libshmbus.a (all position independent), linked as a shared library.
#
# SONAME policy: while the major version is 0, every minor release may change the ABI (the option
# structs, the ring layout that Subscriber::poll reads inline), just as the CMake package accepts
# only the same minor version (SameMinorVersion in cmake/shmbus_install.cmake). So the SONAME
# carries major.minor: libshmbus.so.0.1 -> libshmbus.so.0.1.0, and a program built against 0.1
# never loads a 0.2 it would misread. From 1.0 on it is the major version alone (libshmbus.so.1).
if(PROJECT_VERSION_MAJOR EQUAL 0)
  set(SHMBUS_SOVERSION ${PROJECT_VERSION_MAJOR}.${PROJECT_VERSION_MINOR})
else()
  set(SHMBUS_SOVERSION ${PROJECT_VERSION_MAJOR})
endif()

add_library(shmbus_shared SHARED ${SHMBUS_OBJECTS})
add_library(shmbus::shmbus_shared ALIAS shmbus_shared)
shmbus_library_interface(shmbus_shared)
# cmake/shmbus.map exports the public API only (what include/shmbus/ declares); every other symbol
# is local to the library. Calls between the library's own functions then bind at link time,
# directly, instead of through the PLT with a GOT load each (which symbols a program may interpose
# is decided per exported symbol), and the dynamic symbol table stays small, so loading is quick.
# tests/install/check_exports.py fails when a function the headers declare is missing from it.
# -Bsymbolic-functions: the library's own calls to its exported functions (RingRef::load_tail on
# the publish path, Subscriber's slow paths) bind directly too; a program cannot interpose them,
# which shmbus does not support anyway (the objects are compiled with -fno-semantic-interposition).
# --no-undefined: a dependency missing from the link fails here, not in a user's program.
set(SHMBUS_EXPORT_MAP ${CMAKE_CURRENT_SOURCE_DIR}/cmake/shmbus.map)
target_link_options(shmbus_shared PRIVATE -Wl,--version-script=${SHMBUS_EXPORT_MAP}
  -Wl,-Bsymbolic-functions -Wl,--no-undefined)
set_target_properties(shmbus_shared PROPERTIES
  OUTPUT_NAME shmbus
  VERSION ${PROJECT_VERSION}
  SOVERSION ${SHMBUS_SOVERSION}
  LINK_DEPENDS ${SHMBUS_EXPORT_MAP}
  EXPORT_NAME shmbus_shared)
