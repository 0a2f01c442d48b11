// shmbus.Publisher: publish(bytes-like, key=, message_type=) returning the sequence, and claim()
// for writing a record in place through a writable memoryview, then commit().
//
// The first try is made with the GIL held (no system call, no allocation in the library: the
// C++ hot path); only when a block subscriber back-pressures the channel does the call let the
// GIL go while it waits, in slices, stepping aside between them for signal handlers
// (KeyboardInterrupt) and other threads (ThreadGuard::let_others_in).
//
// Every call into the library Publisher, claims' commit() and abandon() included, holds the
// object's CallLock: the library Publisher is not thread-safe.
#include <cstring>
#include <optional>
#include <string>
#include <utility>

#include <fmt/format.h>

#include "python/bindings.hpp"
#include "shmbus/publisher.hpp"

namespace shmbus::python {
namespace {

using namespace std::chrono_literals;

constexpr const char* kKind = "publisher of channel";

// The library Publisher, shared by the PyPublisher and its open claims.
struct PublisherHolder {
  std::optional<Publisher> publisher;
  std::string channel;
  CallLock lock;  // one call at a time (bindings.hpp, ThreadGuard)
  std::size_t open_claims = 0;  // changed with the GIL held
  // Set by a close() that has to wait for the lock: a back-pressured publish or a wait_durable
  // in another thread gives up at its next slice instead of at its timeout.
  // relaxed: it only ends a wait; the lock orders the state the two calls share.
  std::atomic<bool> closing{false};

  Publisher& get() {
    if (!publisher) raise(ErrorCode::invalid_argument, fmt::format("publisher of channel '{}' is closed", channel));
    return *publisher;
  }
  // Between the slices of a wait, after let_others_in(): closed meanwhile, or about to be?
  Publisher& get_while_waiting() {
    // relaxed: see `closing`.
    if (closing.load(std::memory_order_relaxed)) {
      raise(ErrorCode::invalid_argument,
            fmt::format("publisher of channel '{}' was closed while this call waited", channel));
    }
    return get();
  }
};

std::string status_message(const PublisherHolder& h, PublishStatus status, std::size_t size,
                           std::size_t key_size, std::optional<std::chrono::nanoseconds> timeout) {
  switch (status) {
    case PublishStatus::too_large:
      return key_size > kMaxKeyLength
                 ? fmt::format("channel '{}': the key has {} bytes (at most {})", h.channel,
                               key_size, kMaxKeyLength)
                 : fmt::format("channel '{}': a payload of {} bytes{} is above the channel's "
                               "max_message ({} bytes)",
                               h.channel, size,
                               key_size > 0 ? fmt::format(" with a {}-byte key", key_size) : "",
                               h.publisher->info().max_message);
    case PublishStatus::timed_out:
    case PublishStatus::back_pressured:
      return fmt::format("channel '{}': no room for {:.3f} s: a block subscriber has not freed the "
                         "space (shmbus stat shows which)",
                         h.channel, timeout ? std::chrono::duration<double>(*timeout).count() : 0.0);
    case PublishStatus::abandoned:
      return fmt::format("channel '{}': the claim was held past the abandon timeout and a peer "
                         "marked it abandoned",
                         h.channel);
    case PublishStatus::corrupt:
      return fmt::format("channel '{}': the claim word holds garbage (a peer wrote into the ring)",
                         h.channel);
    case PublishStatus::ok:
      break;
  }
  return "ok";
}

ErrorCode status_code(PublishStatus status) {
  switch (status) {
    case PublishStatus::too_large: return ErrorCode::invalid_argument;
    case PublishStatus::timed_out:
    case PublishStatus::back_pressured: return ErrorCode::timed_out;
    case PublishStatus::abandoned:
    case PublishStatus::corrupt: return ErrorCode::corrupt;
    case PublishStatus::ok: break;
  }
  return ErrorCode::system;
}

// The record's tag from the `key` and `message_type` arguments; `key_bytes` holds the key's bytes
// (None: no key) for as long as the tag is used.
RecordTag tag_arg(const py::object& key, std::uint16_t message_type,
                  std::optional<BytesArg>& key_bytes) {
  if (!key.is_none()) key_bytes.emplace(key, "key");
  return RecordTag{key_bytes ? key_bytes->span() : std::span<const std::byte>{}, message_type};
}

// Claims `size` payload bytes with `tag`: once with the GIL held, then (back-pressured) without
// it, in slices, until `timeout` (nullopt: no end). Raises on anything but ok. Under `guard`.
void claim_space(PublisherHolder& h, ThreadGuard& guard, std::uint32_t size, const RecordTag& tag,
                 std::optional<std::chrono::nanoseconds> timeout, Claim& claim) {
  PublishStatus status = h.get().try_claim(size, claim, tag);
  if (status == PublishStatus::back_pressured && timeout != std::chrono::nanoseconds::zero()) {
    const auto deadline = std::chrono::steady_clock::now() + timeout.value_or(0ns);
    for (;;) {
      std::chrono::nanoseconds slice = kSignalSlice;
      if (timeout) slice = std::min<std::chrono::nanoseconds>(slice, std::max(deadline - std::chrono::steady_clock::now(), std::chrono::nanoseconds(0)));
      // Again after every let_others_in(): a signal handler or another thread may have closed it.
      Publisher& pub = h.get_while_waiting();
      {
        py::gil_scoped_release no_gil;
        status = pub.claim(size, claim, tag, slice);
      }
      if (status != PublishStatus::timed_out) break;
      if (timeout && std::chrono::steady_clock::now() >= deadline) break;
      guard.let_others_in();
    }
  }
  if (status != PublishStatus::ok) {
    raise(status_code(status), status_message(h, status, size, tag.key.size(), timeout));
  }
}

std::uint32_t size_arg(std::size_t size) {
  if (size > UINT32_MAX) raise(ErrorCode::invalid_argument, fmt::format("a payload of {} bytes is too large", size));
  return static_cast<std::uint32_t>(size);
}

// A record claimed in place: `buffer` is a writable memoryview of its payload until commit() or
// abandon(), which release it (and refuse while a slice or array made from it still exists).
class PyClaim {
 public:
  PyClaim(py::object publisher, std::shared_ptr<PublisherHolder> holder, Claim claim)
      : publisher_(std::move(publisher)), holder_(std::move(holder)), claim_(claim),
        owner_(std::make_shared<BufferOwner>()) {
    ++holder_->open_claims;
    buffer_ = make_memoryview(owner_, claim_.data(), claim_.size(), true);
  }
  PyClaim(const PyClaim&) = delete;
  PyClaim& operator=(const PyClaim&) = delete;
  ~PyClaim() {
    if (open_) {  // dropped unfinished: the space goes back as an abandoned claim
      release_memoryview(buffer_);
      // Without the lock only when the garbage collector runs this in the middle of a call of
      // the publisher on this thread (ThreadGuard::ReentryAllowed).
      const ThreadGuard guard(holder_->lock, ThreadGuard::ReentryAllowed{});
      // close() refuses while a claim is open, so the publisher is there.
      if (holder_->publisher) holder_->publisher->abandon(claim_);
      --holder_->open_claims;
    }
  }

  py::object buffer() const {
    check_open("buffer");
    return buffer_;
  }
  std::uint64_t sequence() const { return claim_.sequence(); }
  std::uint32_t size() const { return claim_.size(); }
  bool open() const { return open_; }

  std::uint64_t commit() {
    const ThreadGuard guard(holder_->lock, kKind, holder_->channel);
    finish("commit");
    const PublishStatus status = holder_->publisher->commit(claim_);
    if (status != PublishStatus::ok) {
      raise(status_code(status), status_message(*holder_, status, claim_.size(), 0, std::nullopt));
    }
    return claim_.sequence();
  }
  void abandon() {
    const ThreadGuard guard(holder_->lock, kKind, holder_->channel);
    finish("abandon");
    holder_->publisher->abandon(claim_);
  }

 private:
  void check_open(const char* what) const {
    if (!open_) {
      raise(ErrorCode::invalid_argument,
            fmt::format("claim of sequence {} on channel '{}': {} after it was committed or "
                        "abandoned",
                        claim_.sequence(), holder_->channel, what));
    }
  }
  void finish(const char* what) {
    check_open(what);
    release_memoryview(buffer_);
    if (owner_->exports != 0) {
      raise(ErrorCode::busy,
            fmt::format("claim of sequence {} on channel '{}': cannot {} while a slice or array "
                        "made from its buffer still exists (it would write into the ring after "
                        "the record is published); delete it first",
                        claim_.sequence(), holder_->channel, what));
    }
    open_ = false;
    --holder_->open_claims;
  }

  py::object publisher_;  // keeps the Publisher (and its mapping) alive while the claim is open
  std::shared_ptr<PublisherHolder> holder_;
  Claim claim_;
  std::shared_ptr<BufferOwner> owner_;
  py::object buffer_;
  bool open_ = true;
};

class PyPublisher {
 public:
  PyPublisher(const std::string& channel, const py::object& capacity, const py::object& max_message,
              bool single_producer, const py::object& mode, const py::object& subscriber_slots,
              const py::object& producer_slots, bool accept_existing)
      : holder_(std::make_shared<PublisherHolder>()) {
    holder_->channel = channel;
    const bool defaults = capacity.is_none() && max_message.is_none() && !single_producer &&
                          mode.is_none() && subscriber_slots.is_none() &&
                          producer_slots.is_none() && !accept_existing;
    Result<Publisher> opened = [&] {
      if (defaults) return Publisher::open(channel);
      ChannelOptions o;
      if (!capacity.is_none()) o.capacity = capacity.cast<std::uint64_t>();
      if (!max_message.is_none()) o.max_message = max_message.cast<std::uint32_t>();
      if (!mode.is_none()) o.mode = mode.cast<unsigned>();
      if (!subscriber_slots.is_none()) o.subscriber_slots = subscriber_slots.cast<std::uint32_t>();
      if (!producer_slots.is_none()) o.producer_slots = producer_slots.cast<std::uint32_t>();
      o.single_producer = single_producer;
      o.accept_existing = accept_existing;
      py::gil_scoped_release no_gil;  // may wait for a creator (open_timeout)
      return Publisher::open(channel, o);
    }();
    if (!opened) raise(opened.error());
    holder_->publisher.emplace(std::move(*opened));
  }

  std::uint64_t publish(const py::object& data, const py::object& key, std::uint16_t message_type,
                        const py::object& timeout) {
    const BytesArg payload(data, "data");
    std::optional<BytesArg> key_bytes;
    const RecordTag tag = tag_arg(key, message_type, key_bytes);
    const auto wait = timeout_arg(timeout, "timeout");
    ThreadGuard guard(holder_->lock, kKind, holder_->channel);
    Claim claim;
    claim_space(*holder_, guard, size_arg(payload.span().size()), tag, wait, claim);
    if (!payload.span().empty()) std::memcpy(claim.data(), payload.span().data(), payload.span().size());
    const PublishStatus status = holder_->publisher->commit(claim);
    if (status != PublishStatus::ok) {
      raise(status_code(status), status_message(*holder_, status, claim.size(), 0, std::nullopt));
    }
    return claim.sequence();
  }

  std::unique_ptr<PyClaim> claim(py::object self, std::size_t size, const py::object& key,
                                 std::uint16_t message_type, const py::object& timeout) {
    std::optional<BytesArg> key_bytes;
    const RecordTag tag = tag_arg(key, message_type, key_bytes);
    const auto wait = timeout_arg(timeout, "timeout");
    ThreadGuard guard(holder_->lock, kKind, holder_->channel);
    Claim claim;
    claim_space(*holder_, guard, size_arg(size), tag, wait, claim);
    return std::make_unique<PyClaim>(std::move(self), holder_, claim);
  }

  // Under the lock all along (close() in another thread waits, or ends the wait at its next
  // slice), in slices between which signal handlers and other threads have their turn.
  bool wait_durable(std::uint64_t sequence, const py::object& timeout) {
    const auto wait = timeout_arg(timeout, "timeout");
    ThreadGuard guard(holder_->lock, kKind, holder_->channel);
    const auto deadline = std::chrono::steady_clock::now() + wait.value_or(0ns);
    Publisher* pub = &holder_->get();
    for (;;) {
      std::chrono::nanoseconds slice = kSignalSlice;
      if (wait) {
        const auto left = deadline - std::chrono::steady_clock::now();
        slice = std::min<std::chrono::nanoseconds>(slice, std::max(left, std::chrono::nanoseconds(0)));
      }
      bool durable = false;
      std::chrono::steady_clock::duration took{};
      {
        py::gil_scoped_release no_gil;
        const auto start = std::chrono::steady_clock::now();
        durable = pub->wait_durable(sequence, slice);
        took = std::chrono::steady_clock::now() - start;
      }
      if (durable) return true;
      // The library returns false before its timeout only when no live journaler is attached
      // (it clocks its timeout from after `start`, on the same monotonic clock): nothing would
      // make the sequence durable, so the answer is false now, not after the whole timeout.
      if (took < slice || slice == std::chrono::nanoseconds(0)) return false;
      if (wait && std::chrono::steady_clock::now() >= deadline) return false;
      guard.let_others_in();
      pub = &holder_->get_while_waiting();
    }
  }

  void close() {
    if (holder_->open_claims != 0) raise_claims_open();
    // A back-pressured publish or a wait_durable in another thread ends at its next slice.
    ThreadGuard guard(holder_->lock, kKind, holder_->channel, &holder_->closing);
    // A claim may have been made while this call waited for the lock.
    if (holder_->open_claims != 0) {
      // relaxed: see PublisherHolder::closing; the publisher stays open.
      holder_->closing.store(false, std::memory_order_relaxed);
      raise_claims_open();
    }
    holder_->publisher.reset();
  }

  // read(publisher) under the lock: close() in another thread destroys it.
  template <class Read>
  auto locked(Read read) {
    const ThreadGuard guard(holder_->lock, kKind, holder_->channel);
    return read(holder_->get());
  }
  const std::string& channel() const { return holder_->channel; }

 private:
  [[noreturn]] void raise_claims_open() const {
    raise(ErrorCode::busy, fmt::format("publisher of channel '{}': {} claim(s) still open; commit "
                                       "or abandon them first",
                                       holder_->channel, holder_->open_claims));
  }

  std::shared_ptr<PublisherHolder> holder_;
};

}  // namespace

void bind_publisher(py::module_& m) {
  py::class_<PyClaim>(m, "Claim",
                      "Space claimed in the ring: write the payload into `buffer` (a writable "
                      "memoryview), then commit() (or abandon()). As a context manager it commits "
                      "on a normal exit and abandons on an exception.")
      .def_property_readonly("buffer", &PyClaim::buffer)
      .def_property_readonly("sequence", &PyClaim::sequence)
      .def_property_readonly("size", &PyClaim::size)
      .def_property_readonly("open", &PyClaim::open)
      .def("commit", &PyClaim::commit, "Publishes the record; returns its sequence.")
      .def("abandon", &PyClaim::abandon, "Gives the space back; subscribers count the sequence lost.")
      .def("__enter__", [](py::object self) -> py::object { return self.attr("buffer"); })
      .def("__exit__", [](PyClaim& c, const py::object& type, const py::object&, const py::object&) {
        if (!c.open()) return false;
        if (type.is_none()) {
          c.commit();
        } else {
          c.abandon();
        }
        return false;
      });

  // A property read under the publisher's lock.
  const auto locked = [](auto read) { return [read](PyPublisher& p) { return p.locked(read); }; };
  py::class_<PyPublisher>(m, "Publisher",
                          "The producer side of a channel; creates the channel if it does not "
                          "exist (docs/python.md).")
      .def(py::init<const std::string&, const py::object&, const py::object&, bool, const py::object&,
                    const py::object&, const py::object&, bool>(),
           py::arg("channel"), py::kw_only(), py::arg("capacity") = py::none(),
           py::arg("max_message") = py::none(), py::arg("single_producer") = false,
           py::arg("mode") = py::none(), py::arg("subscriber_slots") = py::none(),
           py::arg("producer_slots") = py::none(), py::arg("accept_existing") = false)
      .def("publish", &PyPublisher::publish, py::arg("data"), py::kw_only(),
           py::arg("key") = py::none(), py::arg("message_type") = 0, py::arg("timeout") = 5.0,
           "Publishes one record (a copy of `data`); returns its sequence. Waits up to `timeout` "
           "seconds (None: without end) while a block subscriber holds the space.")
      .def(
          "claim",
          [](py::object self, std::size_t size, const py::object& key, std::uint16_t type,
             const py::object& timeout) {
            return self.cast<PyPublisher&>().claim(self, size, key, type, timeout);
          },
          py::arg("size"), py::kw_only(), py::arg("key") = py::none(), py::arg("message_type") = 0,
          py::arg("timeout") = 5.0)
      .def("wait_durable", &PyPublisher::wait_durable, py::arg("sequence"), py::arg("timeout"),
           "True once the journaler has fdatasync'ed `sequence`; False after `timeout` seconds "
           "(None: no end) or at once when no live journaler is attached.")
      .def_property_readonly("durable_sequence",
                             locked([](Publisher& pub) { return pub.durable_sequence(); }))
      .def_property_readonly("journaled_sequence",
                             locked([](Publisher& pub) { return pub.journaled_sequence(); }))
      .def_property_readonly("channel", &PyPublisher::channel)
      .def_property_readonly("capacity", locked([](Publisher& pub) { return pub.info().capacity; }))
      .def_property_readonly("max_message",
                             locked([](Publisher& pub) { return pub.info().max_message; }))
      .def_property_readonly("single_producer",
                             locked([](Publisher& pub) { return pub.info().single_producer; }))
      .def("close", &PyPublisher::close)
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__", [](PyPublisher& p, const py::object&, const py::object&, const py::object&) {
        p.close();
        return false;
      });
}

}  // namespace shmbus::python
