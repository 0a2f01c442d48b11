# The installed package. Both kinds of libshmbus are installed side by side (the shared one in the
# plain build only, see CMakeLists.txt), each with its own CMake target and pkg-config module:
#   libshmbus.a      shmbus::shmbus_static   shmbus-static.pc
#   libshmbus.so.*   shmbus::shmbus_shared   shmbus-shared.pc
# and shmbus::shmbus / shmbus.pc mean the kind BUILD_SHARED_LIBS chose (static by default).
# Nothing in it names the prefix: the CMake files find it from their own location, the .pc files
# from ${pcfiledir}, so an installed tree can be moved or unpacked anywhere.
include(CMakePackageConfigHelpers)
set(SHMBUS_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/shmbus)
set(SHMBUS_PC_DIR ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
set(SHMBUS_PACKAGE_DIR ${CMAKE_CURRENT_BINARY_DIR}/package)

install(TARGETS shmbus EXPORT shmbusStaticTargets ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(EXPORT shmbusStaticTargets NAMESPACE shmbus:: DESTINATION ${SHMBUS_CMAKE_DIR})
if(TARGET shmbus_shared)
  install(TARGETS shmbus_shared EXPORT shmbusSharedTargets
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
  install(EXPORT shmbusSharedTargets NAMESPACE shmbus:: DESTINATION ${SHMBUS_CMAKE_DIR})
endif()

# The public API, the generated version header, and under detail/core/ the part of core/ the
# public headers compile from (see include/shmbus/detail/core_headers.hpp).
install(DIRECTORY include/shmbus/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/shmbus)
install(FILES ${SHMBUS_GENERATED_INCLUDE}/shmbus/version.hpp ${SHMBUS_GENERATED_INCLUDE}/shmbus/version.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/shmbus)
install(FILES core/layout.hpp core/ring_ref.hpp core/ring_reader.hpp core/latency_histogram.hpp
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/shmbus/detail/core)

# 0.x: a minor release may break the API, so only the same minor version is compatible.
write_basic_package_version_file(${SHMBUS_PACKAGE_DIR}/shmbusConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
if(BUILD_SHARED_LIBS)
  set(SHMBUS_DEFAULT_KIND shared)
else()
  set(SHMBUS_DEFAULT_KIND static)
endif()
configure_file(cmake/shmbusConfig.cmake.in ${SHMBUS_PACKAGE_DIR}/shmbusConfig.cmake @ONLY)
install(FILES ${SHMBUS_PACKAGE_DIR}/shmbusConfig.cmake ${SHMBUS_PACKAGE_DIR}/shmbusConfigVersion.cmake
  DESTINATION ${SHMBUS_CMAKE_DIR})

# pkg-config: the prefix is found from the .pc file's own directory.
file(RELATIVE_PATH SHMBUS_PC_TO_PREFIX "/prefix/${SHMBUS_PC_DIR}" "/prefix")
string(REGEX REPLACE "/$" "" SHMBUS_PC_TO_PREFIX "${SHMBUS_PC_TO_PREFIX}")
set(SHMBUS_PC_KINDS static)
if(TARGET shmbus_shared)
  list(APPEND SHMBUS_PC_KINDS shared)
endif()
foreach(kind IN LISTS SHMBUS_PC_KINDS)
  configure_file(cmake/shmbus-${kind}.pc.in ${SHMBUS_PACKAGE_DIR}/shmbus-${kind}.pc @ONLY)
  install(FILES ${SHMBUS_PACKAGE_DIR}/shmbus-${kind}.pc DESTINATION ${SHMBUS_PC_DIR})
endforeach()
install(FILES ${SHMBUS_PACKAGE_DIR}/shmbus-${SHMBUS_DEFAULT_KIND}.pc DESTINATION ${SHMBUS_PC_DIR}
  RENAME shmbus.pc)

install(FILES LICENSE README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
file(GLOB SHMBUS_DOCS CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/docs/*.md)
install(FILES ${SHMBUS_DOCS} DESTINATION ${CMAKE_INSTALL_DOCDIR})
