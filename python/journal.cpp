// shmbus.Journal(dir): a journal directory written by `shmbus record` (or shmbus::Journaler),
// read through journal::JournalReader (include/shmbus/journal_reader.hpp): seek by sequence or
// time, read a range at once into numpy arrays plus one bytes object holding every payload, or
// iterate record by record.
//
// read() runs without the GIL and appends into plain vectors; the arrays then take those vectors
// over without copying (a capsule frees each with its array).
#include <algorithm>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include "python/bindings.hpp"
#include "shmbus/journal_reader.hpp"

namespace shmbus::python {
namespace {

using journal::JournalReader;
using journal::JournalRecord;
using journal::ReadStatus;
using journal::RecordType;

// A numpy array that owns `values` (moved into the heap, freed with the array).
template <class T>
py::array_t<T> to_array(std::vector<T>&& values) {
  auto* owned = new std::vector<T>(std::move(values));
  py::capsule free_it(owned, [](void* p) { delete static_cast<std::vector<T>*>(p); });
  return py::array_t<T>(static_cast<py::ssize_t>(owned->size()), owned->data(), free_it);
}

// A range of data records as columns: record i's payload is
// payloads[payload_offset[i] : payload_offset[i] + payload_length[i]], its key likewise in `keys`.
struct JournalArrays {
  py::object sequence, timestamp_ns, message_type, payload_offset, payload_length, key_offset,
      key_length;
  py::bytes payloads, keys;
  py::list gaps;  // (first lost sequence, count) of each gap record met, in order
  std::size_t count = 0;
};

struct Columns {
  std::vector<std::uint64_t> sequence;
  std::vector<std::int64_t> timestamp_ns;
  std::vector<std::uint16_t> message_type;
  std::vector<std::uint64_t> payload_offset;
  std::vector<std::uint32_t> payload_length;
  std::vector<std::uint64_t> key_offset;
  std::vector<std::uint16_t> key_length;
  std::string payloads;
  std::string keys;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> gaps;

  // Room for what the journal's files can hold, or for `limit` records when that is less, so
  // that a long read does not grow (copy, and fault in afresh) its buffers a doubling at a time:
  // that was two thirds of its time. Large reservations cost address space only until written;
  // capped, and growing as usual past that.
  void reserve(const std::vector<journal::SegmentInfo>& segments, std::size_t limit) {
    std::uint64_t bytes = 0;
    for (const journal::SegmentInfo& s : segments) bytes += s.file_bytes;
    constexpr std::uint64_t kMaxReserve = std::uint64_t{1} << 30;
    constexpr std::uint64_t kSmallestRecord = 32;  // a record header with no payload, at least
    // Payload bytes reserved per record of a limited read; a read of larger records grows the
    // buffer as it goes, which costs little next to reading them.
    constexpr std::uint64_t kPayloadPerRecord = 256;
    const auto records = static_cast<std::size_t>(
        std::min<std::uint64_t>({bytes / kSmallestRecord, limit, kMaxReserve / 8}));
    sequence.reserve(records);
    timestamp_ns.reserve(records);
    message_type.reserve(records);
    payload_offset.reserve(records);
    payload_length.reserve(records);
    key_offset.reserve(records);
    key_length.reserve(records);
    payloads.reserve(static_cast<std::size_t>(
        std::min({bytes, kMaxReserve, std::uint64_t{records} * kPayloadPerRecord})));
  }
};

py::dict record_dict(const JournalRecord& r, const std::string& segment) {
  py::dict d;
  d["type"] = r.type == RecordType::gap ? "gap" : "data";
  d["sequence"] = r.sequence;
  d["timestamp_ns"] = r.timestamp_ns;
  d["segment"] = segment;
  d["offset"] = r.offset;
  if (r.type == RecordType::gap) {
    d["gap_count"] = r.gap_count;
  } else {
    d["payload"] = py::bytes(reinterpret_cast<const char*>(r.payload.data()), r.payload.size());
    d["key"] = r.key.empty() ? py::object(py::none())
                             : py::object(py::bytes(reinterpret_cast<const char*>(r.key.data()), r.key.size()));
    d["message_type"] = r.message_type;
  }
  return d;
}

class PyJournal {
 public:
  explicit PyJournal(const std::string& dir) : dir_(dir) {
    Result<JournalReader> opened = [&] {
      py::gil_scoped_release no_gil;
      return JournalReader::open(dir);
    }();
    if (!opened) raise(opened.error());
    reader_.emplace(std::move(*opened));
  }

  void seek_sequence(std::uint64_t sequence) {
    ThreadGuard guard(lock_, "journal", dir_);
    Result<void> done = [&] {
      py::gil_scoped_release no_gil;
      return reader_->seek_sequence(sequence);
    }();
    if (!done) raise(done.error());
  }

  void seek_time(std::int64_t time_ns) {
    ThreadGuard guard(lock_, "journal", dir_);
    Result<void> done = [&] {
      py::gil_scoped_release no_gil;
      return reader_->seek_time(time_ns);
    }();
    if (!done) raise(done.error());
  }

  void refresh() {
    ThreadGuard guard(lock_, "journal", dir_);
    Result<void> done = reader_->refresh();
    if (!done) raise(done.error());
  }

  // Reads data records from the current position: at most `max_records`, none past
  // `to_sequence` or with a timestamp past `to_time_ns` (the reader is left on that record).
  // At a damaged record it returns the data records read before it, if any; the reader stays
  // before the damage, so the next call raises there (skip_damage() moves past it).
  JournalArrays read(const std::optional<std::size_t>& max_records,
                     const std::optional<std::uint64_t>& to_sequence,
                     const std::optional<std::int64_t>& to_time_ns) {
    ThreadGuard guard(lock_, "journal", dir_);
    Columns c;
    std::optional<std::string> damage;
    {
      py::gil_scoped_release no_gil;
      const std::size_t limit = max_records.value_or(std::numeric_limits<std::size_t>::max());
      c.reserve(reader_->segments(), limit);
      JournalRecord r;
      std::optional<std::uint64_t> stopped_at;  // the record read that belongs to the next call
      while (c.sequence.size() < limit) {
        const ReadStatus status = reader_->next(r);
        if (status == ReadStatus::end) break;
        if (status == ReadStatus::damaged) {
          damage = reader_->last_error();
          break;
        }
        if ((to_sequence && r.sequence > *to_sequence) ||
            (to_time_ns && r.type == RecordType::data && r.timestamp_ns > *to_time_ns)) {
          stopped_at = r.sequence;
          break;
        }
        if (r.type == RecordType::gap) {
          c.gaps.emplace_back(r.sequence, r.gap_count);
          continue;
        }
        c.sequence.push_back(r.sequence);
        c.timestamp_ns.push_back(r.timestamp_ns);
        c.message_type.push_back(r.message_type);
        c.payload_offset.push_back(c.payloads.size());
        c.payload_length.push_back(static_cast<std::uint32_t>(r.payload.size()));
        c.payloads.append(reinterpret_cast<const char*>(r.payload.data()), r.payload.size());
        c.key_offset.push_back(c.keys.size());
        c.key_length.push_back(static_cast<std::uint16_t>(r.key.size()));
        c.keys.append(reinterpret_cast<const char*>(r.key.data()), r.key.size());
      }
      // The record past the range stays for the next read: seek back onto it.
      if (stopped_at) (void)reader_->seek_sequence(*stopped_at);
    }
    // An empty result means the end to a caller reading until one comes: damage with no data
    // record before it raises (with the gap records read, if any, in the message).
    if (damage && c.sequence.empty()) {
      std::string gaps;
      for (const auto& [first, count] : c.gaps) {
        gaps += fmt::format("{}{} lost from sequence {}",
                            gaps.empty() ? " (after gap records: " : ", ", count, first);
      }
      if (!gaps.empty()) gaps += ")";
      raise(ErrorCode::corrupt, fmt::format("journal '{}': {}{}", dir_, *damage, gaps));
    }
    JournalArrays out;
    out.count = c.sequence.size();
    out.sequence = to_array(std::move(c.sequence));
    out.timestamp_ns = to_array(std::move(c.timestamp_ns));
    out.message_type = to_array(std::move(c.message_type));
    out.payload_offset = to_array(std::move(c.payload_offset));
    out.payload_length = to_array(std::move(c.payload_length));
    out.key_offset = to_array(std::move(c.key_offset));
    out.key_length = to_array(std::move(c.key_length));
    out.payloads = py::bytes(c.payloads);
    out.keys = py::bytes(c.keys);
    for (const auto& [first, count] : c.gaps) out.gaps.append(py::make_tuple(first, count));
    return out;
  }

  py::dict next() {
    ThreadGuard guard(lock_, "journal", dir_);
    JournalRecord r;
    const ReadStatus status = reader_->next(r);
    if (status == ReadStatus::end) throw py::stop_iteration();
    if (status == ReadStatus::damaged) {
      raise(ErrorCode::corrupt, fmt::format("journal '{}': {}", dir_, reader_->last_error()));
    }
    return record_dict(r, reader_->segments().at(r.segment).path);
  }

  bool skip_damage() {
    ThreadGuard guard(lock_, "journal", dir_);
    return reader_->skip_damage();
  }

  // Under the lock: refresh() in another thread changes them.
  std::uint64_t first_sequence() {
    ThreadGuard guard(lock_, "journal", dir_);
    return reader_->first_sequence();
  }

  py::list segments() {
    ThreadGuard guard(lock_, "journal", dir_);
    py::list out;
    for (const journal::SegmentInfo& s : reader_->segments()) {
      py::dict d;
      d["path"] = s.path;
      d["first_sequence"] = s.first_sequence;
      d["file_bytes"] = s.file_bytes;
      out.append(d);
    }
    return out;
  }

  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  std::optional<JournalReader> reader_;
  CallLock lock_;  // one call at a time (bindings.hpp, ThreadGuard)
};

}  // namespace

void bind_journal(py::module_& m) {
  py::class_<JournalArrays>(m, "JournalArrays",
                            "Data records as numpy columns and one bytes object of payloads")
      .def_readonly("sequence", &JournalArrays::sequence, "uint64")
      .def_readonly("timestamp_ns", &JournalArrays::timestamp_ns, "int64, ns since the Unix epoch")
      .def_readonly("message_type", &JournalArrays::message_type, "uint16")
      .def_readonly("payload_offset", &JournalArrays::payload_offset, "uint64, into payloads")
      .def_readonly("payload_length", &JournalArrays::payload_length, "uint32")
      .def_readonly("key_offset", &JournalArrays::key_offset, "uint64, into keys")
      .def_readonly("key_length", &JournalArrays::key_length, "uint16; 0: no key")
      .def_readonly("payloads", &JournalArrays::payloads)
      .def_readonly("keys", &JournalArrays::keys)
      .def_readonly("gaps", &JournalArrays::gaps, "(first lost sequence, count) per gap record")
      .def("payload", [](const JournalArrays& a, std::size_t i) -> py::object {
        if (i >= a.count) throw py::index_error(fmt::format("record {} of {}", i, a.count));
        const auto off = a.payload_offset.cast<py::array_t<std::uint64_t>>().at(i);
        const auto len = a.payload_length.cast<py::array_t<std::uint32_t>>().at(i);
        const auto whole = py::reinterpret_steal<py::object>(PyMemoryView_FromObject(a.payloads.ptr()));
        if (!whole) throw py::error_already_set();
        py::object part = whole[py::slice(static_cast<py::ssize_t>(off), static_cast<py::ssize_t>(off + len), 1)];
        return part;  // an object, not an accessor that would outlive `whole`
      }, py::arg("i"), "Record i's payload, a memoryview into payloads")
      .def("__len__", [](const JournalArrays& a) { return a.count; });

  py::class_<PyJournal>(m, "Journal",
                        "A journal directory (`shmbus record --dir DIR`): seek, then read() a range "
                        "as numpy arrays or iterate records (docs/python.md).")
      .def(py::init<const std::string&>(), py::arg("dir"))
      .def("seek_sequence", &PyJournal::seek_sequence, py::arg("sequence"),
           "Positions the reader on the record holding `sequence` (the first record if it is "
           "older than the journal, the end if it is newer).")
      .def("seek_time", &PyJournal::seek_time, py::arg("time_ns"),
           "Positions the reader on the first data record published at or after `time_ns`.")
      .def("read", &PyJournal::read, py::kw_only(), py::arg("max_records") = py::none(),
           py::arg("to_sequence") = py::none(), py::arg("to_time_ns") = py::none(),
           "Reads data records from the position on, as JournalArrays. At a damaged record it "
           "returns those read before it; with none, it raises shmbus.Error (code 'corrupt').")
      .def("refresh", &PyJournal::refresh, "Sees what the journaler appended since.")
      .def("skip_damage", &PyJournal::skip_damage,
           "After a damaged record raised: moves past the damage; False if nothing was skipped.")
      .def("__iter__", [](py::object self) { return self; })
      .def("__next__", &PyJournal::next,
           "The next record as a dict (type 'data' or 'gap', sequence, timestamp_ns, payload, "
           "key, message_type or gap_count, segment, offset)")
      .def_property_readonly("first_sequence", &PyJournal::first_sequence)
      .def_property_readonly("segments", &PyJournal::segments)
      .def_property_readonly("dir", &PyJournal::dir);
}

}  // namespace shmbus::python
