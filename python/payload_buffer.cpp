// The exporter behind every memoryview the module hands out (bindings.hpp, BufferOwner): a small
// CPython type implementing the buffer protocol, because the module must know when the last
// buffer taken from the memory is given back (pybind11's buffer support does not say).
#include <new>

#include "python/bindings.hpp"

namespace shmbus::python {
namespace {

struct PayloadBuffer {
  PyObject_HEAD
  std::byte* data;
  Py_ssize_t size;
  bool writable;
  std::shared_ptr<BufferOwner> owner;  // constructed in place in make_memoryview
};

int payload_getbuffer(PyObject* self, Py_buffer* view, int flags) {
  auto* b = reinterpret_cast<PayloadBuffer*>(self);
  if (PyBuffer_FillInfo(view, self, b->data, b->size, b->writable ? 0 : 1, flags) != 0) return -1;
  ++b->owner->exports;  // the GIL is held in every buffer-protocol call
  return 0;
}

void payload_releasebuffer(PyObject* self, Py_buffer*) {
  --reinterpret_cast<PayloadBuffer*>(self)->owner->exports;
}

void payload_dealloc(PyObject* self) {
  PyTypeObject* type = Py_TYPE(self);
  reinterpret_cast<PayloadBuffer*>(self)->owner.~shared_ptr();
  type->tp_free(self);
  Py_DECREF(type);  // instances of a heap type hold a reference to it
}

PyType_Slot payload_buffer_slots[] = {
    {Py_tp_dealloc, reinterpret_cast<void*>(payload_dealloc)},
    {Py_bf_getbuffer, reinterpret_cast<void*>(payload_getbuffer)},
    {Py_bf_releasebuffer, reinterpret_cast<void*>(payload_releasebuffer)},
    {Py_tp_doc, const_cast<char*>("The memory behind a payload memoryview (internal)")},
    {0, nullptr}};

PyType_Spec payload_buffer_spec = {"shmbus._PayloadBuffer", sizeof(PayloadBuffer), 0,
                                   Py_TPFLAGS_DEFAULT, payload_buffer_slots};

PyTypeObject* payload_buffer_type = nullptr;  // the module keeps a reference for its lifetime

}  // namespace

void bind_payload_buffer(py::module_& m) {
  PyObject* type = PyType_FromSpec(&payload_buffer_spec);
  if (type == nullptr) throw py::error_already_set();
  payload_buffer_type = reinterpret_cast<PyTypeObject*>(type);
  m.add_object("_PayloadBuffer", py::handle(type));
}

py::object make_memoryview(std::shared_ptr<BufferOwner> owner, std::byte* data, std::size_t size,
                           bool writable) {
  PyObject* raw = payload_buffer_type->tp_alloc(payload_buffer_type, 0);
  if (raw == nullptr) throw py::error_already_set();
  auto* b = reinterpret_cast<PayloadBuffer*>(raw);
  b->data = data;
  b->size = static_cast<Py_ssize_t>(size);
  b->writable = writable;
  new (&b->owner) std::shared_ptr<BufferOwner>(std::move(owner));
  const py::object exporter = py::reinterpret_steal<py::object>(raw);
  // The memoryview takes one buffer (and a reference to the exporter) until it is released.
  PyObject* view = PyMemoryView_FromObject(raw);
  if (view == nullptr) throw py::error_already_set();
  return py::reinterpret_steal<py::object>(view);
}

void release_memoryview(py::handle view) {
  PyObject* result = PyObject_CallMethod(view.ptr(), "release", nullptr);
  if (result == nullptr) {
    PyErr_Clear();  // BufferError: something exported from it; the owner's count says so
    return;
  }
  Py_DECREF(result);
}

}  // namespace shmbus::python
