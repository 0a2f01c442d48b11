# Included by each example's CMakeLists.txt: finds shmbus (unless the shmbus tree being built
# provides it) and fmt, and defines add_shmbus_example(NAME SOURCES...), an example program linked
# to both, with examples/common on its include path.
if(NOT TARGET shmbus::shmbus)
  set(CMAKE_CXX_STANDARD 20)
  set(CMAKE_CXX_STANDARD_REQUIRED ON)
  find_package(shmbus 0.1 REQUIRED)
endif()
find_package(fmt REQUIRED)

function(add_shmbus_example name)
  add_executable(${name} ${ARGN})
  target_include_directories(${name} PRIVATE ${CMAKE_CURRENT_FUNCTION_LIST_DIR})
  target_link_libraries(${name} PRIVATE shmbus::shmbus fmt::fmt)
  if(TARGET shmbus_warnings)  # in the shmbus tree: warnings are errors there
    target_link_libraries(${name} PRIVATE shmbus_warnings)
  endif()
endfunction()
