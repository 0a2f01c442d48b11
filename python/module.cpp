// The Python module `shmbus` (docs/python.md): the C++ API of include/shmbus/ for Python code
// (research scripts, operations tools, test harnesses). Each part is bound by a file of its own.
#include "python/bindings.hpp"
#include "shmbus/version.hpp"

PYBIND11_MODULE(shmbus, m) {
  namespace python = shmbus::python;
  m.doc() = "shmbus: a shared-memory bus of sequenced records, with journals (docs/python.md)";
  m.attr("__version__") = SHMBUS_VERSION_STRING;
  python::bind_errors(m);
  python::bind_payload_buffer(m);
  python::bind_publisher(m);
  python::bind_subscriber(m);
  python::bind_stat(m);
  python::bind_journal(m);
}
