// shmbus.Error, argument conversions shared by the bindings.
#include <cmath>
#include <limits>

#include "python/bindings.hpp"
#include "tools/error_names.hpp"

namespace shmbus::python {
namespace {

PyObject* error_type = nullptr;  // shmbus.Error; the module keeps a reference for its lifetime

}  // namespace

void bind_errors(py::module_& m) {
  error_type = PyErr_NewExceptionWithDoc(
      "shmbus.Error",
      "An error of the shmbus library: str(e) is its message, e.code the kind of error "
      "('not_found', 'invalid_argument', 'corrupt', 'busy', 'timed_out', ...).",
      PyExc_RuntimeError, nullptr);
  if (error_type == nullptr) throw py::error_already_set();
  m.add_object("Error", py::handle(error_type));  // add_object takes its own reference
}

void raise(ErrorCode code, const std::string& message) {
  py::object error = py::reinterpret_borrow<py::object>(error_type)(message);
  error.attr("code") = std::string(tools::error_code_name(code));
  PyErr_SetObject(error_type, error.ptr());
  throw py::error_already_set();
}

void raise(const Error& error) { raise(error.code, error.message); }

BytesArg::BytesArg(py::handle object, const char* what) {
  if (PyUnicode_Check(object.ptr())) {
    Py_ssize_t size = 0;
    const char* utf8 = PyUnicode_AsUTF8AndSize(object.ptr(), &size);
    if (utf8 == nullptr) throw py::error_already_set();
    text_ = py::reinterpret_borrow<py::object>(object);  // the UTF-8 form lives with the str
    span_ = {reinterpret_cast<const std::byte*>(utf8), static_cast<std::size_t>(size)};
    return;
  }
  if (PyObject_GetBuffer(object.ptr(), &view_, PyBUF_C_CONTIGUOUS) != 0) {
    PyErr_Clear();
    throw py::type_error(std::string(what) + " must be bytes-like (bytes, bytearray, memoryview, a "
                         "contiguous array) or str, not " +
                         std::string(py::str(py::type::handle_of(object).attr("__name__"))));
  }
  has_view_ = true;
  span_ = {static_cast<const std::byte*>(view_.buf), static_cast<std::size_t>(view_.len)};
}

BytesArg::~BytesArg() {
  if (has_view_) PyBuffer_Release(&view_);
}

std::optional<std::chrono::nanoseconds> timeout_arg(const py::object& seconds, const char* what) {
  if (seconds.is_none()) return std::nullopt;
  const double s = seconds.cast<double>();
  if (!(s >= 0) || !std::isfinite(s)) {
    throw py::value_error(std::string(what) + " must be None or a number of seconds >= 0");
  }
  // Anything past a year is as good as forever, and stays far from nanoseconds' overflow.
  if (s > 365.0 * 86400) return std::nullopt;
  return std::chrono::nanoseconds(static_cast<std::int64_t>(s * 1e9));
}

}  // namespace shmbus::python
