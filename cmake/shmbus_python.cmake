# SHMBUS_PYTHON: build the Python module (python/) when pybind11 and the Debian interpreter are
# there. The interpreter is /usr/bin/python3 unless Python3_EXECUTABLE says otherwise: another
# python3 on PATH (pyenv, conda) lacks Debian's numpy and pytest and has another ABI.
# The sanitizer builds leave it out: an instrumented module cannot load into an uninstrumented
# interpreter without preloading the sanitizer runtime.
if(NOT DEFINED Python3_EXECUTABLE AND EXISTS /usr/bin/python3)
  set(Python3_EXECUTABLE /usr/bin/python3 CACHE FILEPATH "The Python the bindings are built for")
endif()
set(shmbus_python_default OFF)
if(SHMBUS_SANITIZE STREQUAL "" AND NOT SHMBUS_FUZZ)
  find_package(Python3 3.9 QUIET COMPONENTS Interpreter Development.Module)
  if(Python3_FOUND)
    # pybind11 finds the same interpreter through FindPython (Python_EXECUTABLE).
    set(Python_EXECUTABLE ${Python3_EXECUTABLE})
    set(PYBIND11_FINDPYTHON ON)
    find_package(pybind11 2.10 CONFIG QUIET)
    if(pybind11_FOUND)
      set(shmbus_python_default ON)
    endif()
  endif()
endif()
option(SHMBUS_PYTHON "Build the Python bindings (python/; needs pybind11 and python3-dev)"
  ${shmbus_python_default})
if(SHMBUS_PYTHON)
  if(NOT SHMBUS_SANITIZE STREQUAL "")
    message(FATAL_ERROR "SHMBUS_PYTHON: the Python module is not built with sanitizers")
  endif()
  if(NOT pybind11_FOUND)
    find_package(Python3 3.9 REQUIRED COMPONENTS Interpreter Development.Module)
    set(Python_EXECUTABLE ${Python3_EXECUTABLE})
    set(PYBIND11_FINDPYTHON ON)
    find_package(pybind11 2.10 CONFIG REQUIRED)
  endif()
  add_subdirectory(python)
endif()
