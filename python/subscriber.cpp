// shmbus.Subscriber: poll() and iteration, handing out each message's payload as a memoryview
// that stays valid until the next poll, and no longer.
//
// Where a payload lives until then:
//  - block: in the ring itself (zero-copy). The subscriber runs with manual release: what it read
//    stays in place, unoverwritten, until the next poll releases it (Subscriber::release). So a
//    block subscriber's producers wait for the Python code to poll again.
//  - drop and spill: a frame must be copied out of the ring before it is validated (a producer may
//    be overwriting it), and the library reuses its copy buffer for the next frame, so each
//    payload is copied once into the batch's own buffer.
// The next poll (or close()) releases every memoryview it handed out: reading one then raises
// ValueError. A slice or numpy array made from one keeps the batch's buffer (drop, spill) alive;
// for block, it would keep the ring's space, so the next poll raises shmbus.Error instead of
// releasing that space to the producers under it.
//
// The GIL is not held while the library polls or waits. One call at a time (ThreadGuard): a wait
// without end steps aside every 50 ms for signal handlers and other threads (close() among them).
//
// Iteration takes the ring's messages in batches and yields them one by one; the rest of a batch
// waits in `pending_` and is what the next poll() returns, should the loop have been left.
#include <algorithm>
#include <cstring>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <pybind11/stl.h>

#include "python/bindings.hpp"
#include "shmbus/subscriber.hpp"

namespace shmbus::python {
namespace {

// The library subscriber, shared with the batches that point into its ring (block policy).
struct SubscriberHolder {
  std::optional<Subscriber> subscriber;
  std::string channel;
};

// One poll's messages: the memory their payload views point at, and what keeps it valid.
struct Batch : BufferOwner {
  std::shared_ptr<SubscriberHolder> holder;  // block: the ring stays mapped while views live
  std::vector<std::byte> copies;             // drop, spill: payloads and keys, back to back
  bool retired = false;                      // the next poll came: message.bytes() refuses
};

// A message as collected while the GIL is released.
struct Collected {
  std::uint64_t sequence;
  std::int64_t timestamp_ns;
  std::uint64_t lost_before;
  std::uint16_t message_type;
  const std::byte* payload;  // block: in the ring; otherwise null and `offset` into copies
  std::size_t offset;
  std::uint32_t length;
  std::size_t key_offset;  // keys are always copied into `copies`
  std::uint16_t key_length;
};

struct PyMessage {
  std::uint64_t sequence = 0;
  std::int64_t timestamp_ns = 0;
  std::uint64_t lost_before = 0;
  std::uint16_t message_type = 0;
  py::object key;      // bytes, or None
  py::object payload;  // memoryview (until the next poll) or bytes
  std::shared_ptr<Batch> batch;  // null when the payload is bytes

  py::bytes bytes() const {
    if (!batch) return py::reinterpret_borrow<py::bytes>(payload);
    if (batch->retired) {
      raise(ErrorCode::invalid_argument,
            fmt::format("message {}: its payload was released by the next poll; take bytes() "
                        "before polling again, or poll with copy=True",
                        sequence));
    }
    return py::reinterpret_steal<py::bytes>(PyBytes_FromObject(payload.ptr()));
  }

  std::string repr() const {
    return fmt::format("<shmbus.Message sequence={} timestamp_ns={} size={}{}{}{}>", sequence,
                       timestamp_ns, py::len(payload),
                       key.is_none() ? "" : fmt::format(" key={}", std::string(py::repr(key))),
                       message_type ? fmt::format(" message_type={}", message_type) : "",
                       lost_before ? fmt::format(" lost_before={}", lost_before) : "");
  }
};

Policy policy_arg(const std::string& name) {
  if (name == "block") return Policy::block;
  if (name == "drop") return Policy::drop;
  if (name == "spill") return Policy::spill;
  throw py::value_error("policy must be 'block', 'drop' or 'spill', not '" + name + "'");
}

std::chrono::nanoseconds seconds_arg(double s, const char* what) {
  if (!(s > 0) || s > 86400.0 * 365) throw py::value_error(std::string(what) + " must be a positive number of seconds");
  return std::chrono::nanoseconds(static_cast<std::int64_t>(s * 1e9));
}

class PySubscriber {
 public:
  PySubscriber(const std::string& channel, const std::string& name, const std::string& policy,
               const py::object& start, double liveness_timeout, double abandon_timeout,
               bool latency_histogram, const py::object& key_filter,
               const std::vector<std::uint16_t>& message_types)
      : holder_(std::make_shared<SubscriberHolder>()) {
    holder_->channel = channel;
    SubscriberOptions o;
    o.policy = policy_arg(policy);
    o.name = name;
    o.liveness_timeout = seconds_arg(liveness_timeout, "liveness_timeout");
    o.abandon_timeout = seconds_arg(abandon_timeout, "abandon_timeout");
    o.latency_histogram = latency_histogram;
    // Block payloads are read in place: the ring space stays ours until the next poll.
    o.manual_release = o.policy == Policy::block;
    if (py::isinstance<py::str>(start)) {
      const std::string s = start.cast<std::string>();
      if (s == "latest") {
        o.start = StartFrom::latest;
      } else if (s == "earliest") {
        o.start = StartFrom::earliest;
      } else {
        throw py::value_error("start must be 'latest', 'earliest' or a sequence number, not '" + s + "'");
      }
    } else if (py::isinstance<py::int_>(start)) {
      o.start = StartFrom::sequence;
      o.start_sequence = start.cast<std::uint64_t>();
    } else {
      throw py::type_error("start must be 'latest', 'earliest' or a sequence number");
    }
    if (!key_filter.is_none()) {
      const BytesArg key(key_filter, "key_filter");
      o.filter.key = std::string(reinterpret_cast<const char*>(key.span().data()), key.span().size());
    }
    o.filter.message_types = message_types;
    Result<Subscriber> opened = [&] {
      py::gil_scoped_release no_gil;  // may wait for a creator (open_timeout)
      return Subscriber::open(channel, o);
    }();
    if (!opened) raise(opened.error());
    holder_->subscriber.emplace(std::move(*opened));
  }

  // Waits up to `timeout` (nullopt: without end) for messages, then returns up to `max` of them.
  py::list poll(std::size_t max, const py::object& timeout, bool copy) {
    if (max == 0) throw py::value_error("max must be at least 1");
    const auto wait = timeout_arg(timeout, "timeout");
    ThreadGuard guard(lock_, kKind, holder_->channel);
    std::optional<py::list> got = poll_locked(guard, max, wait, copy);
    if (!got) raise_closed();
    return std::move(*got);
  }

  // Iteration: the rest of the last batch, else the next batch; StopIteration once closed
  // (close() from another thread or a signal handler ends a loop waiting for messages).
  py::object next() {
    ThreadGuard guard(lock_, kKind, holder_->channel);
    if (pending_index_ == pending_.size()) {
      std::optional<py::list> got = poll_locked(guard, 256, std::nullopt, iterate_copy_);
      if (!got) throw py::stop_iteration();
      // A poll without end returns messages, or raises: a new batch, or what another thread's
      // iteration left of its batch while this one waited.
      pending_.clear();
      pending_index_ = 0;
      for (py::handle h : *got) pending_.push_back(py::reinterpret_borrow<py::object>(h));
    }
    py::object message = std::move(pending_[pending_index_++]);
    if (pending_index_ == pending_.size()) {
      pending_.clear();
      pending_index_ = 0;
    }
    return message;
  }

  void close() {
    // A poll waiting in another thread gives up at its next slice (closing_).
    ThreadGuard guard(lock_, kKind, holder_->channel, &closing_);
    if (!holder_->subscriber) return;
    pending_.clear();
    pending_index_ = 0;
    release_views();
    if (batch_ && batch_->holder && batch_->exports != 0) {
      // Block: a slice or array still reads the ring, so the subscriber (its mapping, and the
      // space it holds) stays with the batch until that is gone; this object lets go of it.
      batch_.reset();
      auto closed = std::make_shared<SubscriberHolder>();
      closed->channel = holder_->channel;
      holder_ = std::move(closed);
      return;
    }
    batch_.reset();
    holder_->subscriber.reset();
  }

  // read(subscriber) under the lock: counters and status change in another thread's poll.
  template <class Read>
  auto locked(Read read) {
    ThreadGuard guard(lock_, kKind, holder_->channel);
    if (!holder_->subscriber) raise_closed();
    return read(*holder_->subscriber);
  }
  const std::string& channel() const { return holder_->channel; }
  void set_iterate_copy(bool copy) { iterate_copy_ = copy; }

 private:
  static constexpr const char* kKind = "subscriber of channel";

  [[noreturn]] void raise_closed() const {
    raise(ErrorCode::invalid_argument,
          fmt::format("subscriber of channel '{}' is closed", holder_->channel));
  }

  static bool stopped(const Subscriber& sub) {
    return sub.status() == PollStatus::evicted || sub.status() == PollStatus::corrupt;
  }

  // poll() under the lock: first what iteration left of its batch, else the ring's messages.
  // nullopt when the subscriber is closed, or about to be (close() waits for the lock).
  std::optional<py::list> poll_locked(ThreadGuard& guard, std::size_t max,
                                      std::optional<std::chrono::nanoseconds> wait, bool copy) {
    const auto deadline =
        std::chrono::steady_clock::now() + wait.value_or(std::chrono::nanoseconds(0));
    for (;;) {
      // Checked again after every let_others_in(): a signal handler or another thread may have
      // closed this subscriber, polled or iterated meanwhile.
      // relaxed: closing_ only asks this wait to end; the lock orders the state read below.
      if (closing_.load(std::memory_order_relaxed) || !holder_->subscriber) return std::nullopt;
      if (pending_index_ < pending_.size()) return take_pending(max, copy);
      Subscriber& sub = *holder_->subscriber;
      retire_batch(sub);
      auto batch = std::make_shared<Batch>();
      const bool in_place = sub.policy() == Policy::block;
      if (in_place) batch->holder = holder_;
      std::vector<Collected> collected;
      collected.reserve(std::min<std::size_t>(max, 1024));
      const auto handler = [&](const Message& m) {
        Collected c{m.sequence, m.timestamp_ns, m.lost_before, m.message_type, nullptr, 0,
                    static_cast<std::uint32_t>(m.payload.size()), batch->copies.size(),
                    static_cast<std::uint16_t>(m.key.size())};
        batch->copies.insert(batch->copies.end(), m.key.begin(), m.key.end());
        if (in_place) {
          c.payload = m.payload.data();
        } else {
          c.offset = batch->copies.size();
          batch->copies.insert(batch->copies.end(), m.payload.begin(), m.payload.end());
        }
        collected.push_back(c);
      };
      bool more_time = false;
      {
        py::gil_scoped_release no_gil;
        if (sub.poll(handler, max) == 0 && !stopped(sub)) {
          std::chrono::nanoseconds slice = kSignalSlice;
          if (wait) {
            slice = std::min<std::chrono::nanoseconds>(
                slice, std::max(std::chrono::nanoseconds(deadline - std::chrono::steady_clock::now()),
                                std::chrono::nanoseconds(0)));
          }
          if (slice > std::chrono::nanoseconds(0)) {
            if (sub.wait(slice)) (void)sub.poll(handler, max);
            more_time = !wait || std::chrono::steady_clock::now() < deadline;
          }
        }
      }
      if (collected.empty() && sub.status() == PollStatus::evicted) {
        raise(ErrorCode::busy, fmt::format("subscriber of channel '{}' was evicted: {}", holder_->channel,
                                           sub.last_error().empty() ? "it did not poll within its liveness timeout" : sub.last_error()));
      }
      if (collected.empty() && sub.status() == PollStatus::corrupt) {
        raise(ErrorCode::corrupt, fmt::format("channel '{}': {}", holder_->channel, sub.last_error()));
      }
      if (!collected.empty() || !more_time) return build(batch, collected, copy, in_place);
      guard.let_others_in();
    }
  }

  // Up to `max` of the messages iteration took from the ring and has not yielded, in order. Their
  // payloads stay valid (the batch is not retired): the poll after this one releases them.
  py::list take_pending(std::size_t max, bool copy) {
    py::list out;
    while (pending_index_ < pending_.size() && out.size() < max) {
      py::object message = std::move(pending_[pending_index_++]);
      auto& m = message.cast<PyMessage&>();
      if (copy && m.batch) {  // iterated with memoryviews, polled with copy=True
        m.payload = m.bytes();
        m.batch.reset();
      }
      out.append(std::move(message));
    }
    if (pending_index_ == pending_.size()) {
      pending_.clear();
      pending_index_ = 0;
    }
    return out;
  }

  void release_views() {
    for (py::handle view : views_) release_memoryview(view);
    views_.clear();
    if (batch_) batch_->retired = true;
  }

  // The last poll's messages are done with: their views are released and (block) the ring space
  // goes back to the producers. Only once iteration has yielded all of them (pending_ empty).
  void retire_batch(Subscriber& sub) {
    release_views();
    if (!batch_) return;
    if (batch_->holder && batch_->exports != 0) {
      raise(ErrorCode::busy,
            fmt::format("subscriber of channel '{}': {} payload buffer(s) of the previous poll are "
                        "still in use (a slice or numpy array made from a message's memoryview); "
                        "delete them before polling again, or poll with copy=True",
                        holder_->channel, batch_->exports));
    }
    if (batch_->holder) sub.release(sub.cursor());
    batch_.reset();
  }

  py::list build(const std::shared_ptr<Batch>& batch, const std::vector<Collected>& collected,
                 bool copy, bool in_place) {
    py::list out;
    for (const Collected& c : collected) {
      auto message = std::make_unique<PyMessage>();
      message->sequence = c.sequence;
      message->timestamp_ns = c.timestamp_ns;
      message->lost_before = c.lost_before;
      message->message_type = c.message_type;
      message->key = c.key_length == 0
                         ? py::none()
                         : py::object(py::bytes(reinterpret_cast<const char*>(batch->copies.data() + c.key_offset), c.key_length));
      const std::byte* data = in_place ? c.payload : batch->copies.data() + c.offset;
      if (copy) {
        message->payload = py::bytes(reinterpret_cast<const char*>(data), c.length);
      } else {
        message->payload = make_memoryview(batch, const_cast<std::byte*>(data), c.length, false);
        views_.push_back(message->payload);
        message->batch = batch;
      }
      out.append(py::cast(std::move(message)));
    }
    batch_ = batch;
    return out;
  }

  CallLock lock_;  // one call at a time (bindings.hpp, ThreadGuard)
  // Set by a close() that has to wait for the lock: a poll waiting for messages returns at its
  // next slice instead of when one comes. Never cleared: closing is final.
  // relaxed: it only ends a wait; the lock orders the state the two calls share.
  std::atomic<bool> closing_{false};
  std::shared_ptr<SubscriberHolder> holder_;
  std::shared_ptr<Batch> batch_;    // the last poll's
  std::vector<py::object> views_;   // the memoryviews it handed out
  std::vector<py::object> pending_;  // iteration: the rest of its batch, not yielded yet
  std::size_t pending_index_ = 0;
  bool iterate_copy_ = false;
};

}  // namespace

void bind_subscriber(py::module_& m) {
  py::class_<PyMessage>(m, "Message",
                        "One record. `payload` is a read-only memoryview valid until the next poll "
                        "of its subscriber (then released: using it raises ValueError), or bytes "
                        "when polled with copy=True; bytes() copies it.")
      .def_readonly("sequence", &PyMessage::sequence)
      .def_readonly("timestamp_ns", &PyMessage::timestamp_ns)
      .def_readonly("lost_before", &PyMessage::lost_before,
                    "Sequences lost just before this one (drop policy, abandoned claims)")
      .def_readonly("message_type", &PyMessage::message_type)
      .def_readonly("key", &PyMessage::key)
      .def_readonly("payload", &PyMessage::payload)
      .def("bytes", &PyMessage::bytes, "A copy of the payload (raises once it was released)")
      .def("__len__", [](const PyMessage& msg) { return py::len(msg.payload); })
      .def("__repr__", &PyMessage::repr);

  // A property read under the subscriber's lock.
  const auto locked = [](auto read) { return [read](PySubscriber& s) { return s.locked(read); }; };
  py::class_<PySubscriber>(m, "Subscriber", "The consumer side of a channel (docs/python.md).")
      .def(py::init<const std::string&, const std::string&, const std::string&, const py::object&,
                    double, double, bool, const py::object&, const std::vector<std::uint16_t>&>(),
           py::arg("channel"), py::kw_only(), py::arg("name") = "", py::arg("policy") = "block",
           py::arg("start") = "latest", py::arg("liveness_timeout") = 5.0,
           py::arg("abandon_timeout") = 1.0, py::arg("latency_histogram") = false,
           py::arg("key_filter") = py::none(),
           py::arg("message_types") = std::vector<std::uint16_t>{})
      .def("poll", &PySubscriber::poll, py::kw_only(), py::arg("max") = 256,
           py::arg("timeout") = 0.0, py::arg("copy") = false,
           "Up to `max` messages, waiting up to `timeout` seconds (None: until one comes) without "
           "the GIL. Releases the payloads of the poll before. After a loop over the subscriber "
           "was left, first the messages its batch still held.")
      .def("__iter__", [](py::object self) { return self; })
      .def("__next__", &PySubscriber::next)
      .def(
          "messages",
          [](py::object self, bool copy) {
            self.cast<PySubscriber&>().set_iterate_copy(copy);
            return self;
          },
          py::kw_only(), py::arg("copy") = false,
          "Iterates with payloads as bytes (copy=True) or memoryviews (the default)")
      .def_property_readonly("channel", &PySubscriber::channel)
      .def_property_readonly("received", locked([](Subscriber& sub) { return sub.received(); }))
      .def_property_readonly("lost", locked([](Subscriber& sub) { return sub.lost(); }))
      .def_property_readonly("filtered", locked([](Subscriber& sub) { return sub.filtered(); }))
      .def_property_readonly("spilled", locked([](Subscriber& sub) { return sub.spilled(); }))
      .def_property_readonly("next_sequence",
                             locked([](Subscriber& sub) { return sub.next_sequence(); }))
      .def_property_readonly("catching_up",
                             locked([](Subscriber& sub) { return sub.catching_up(); }))
      .def_property_readonly("policy", locked([](Subscriber& sub) {
                               return std::string(to_string(sub.policy()));
                             }))
      .def_property_readonly("status",
                             [](PySubscriber& s) {
                               switch (s.locked([](Subscriber& sub) { return sub.status(); })) {
                                 case PollStatus::ok: return "ok";
                                 case PollStatus::corrupt: return "corrupt";
                                 case PollStatus::evicted: return "evicted";
                                 case PollStatus::journal_unavailable: return "journal_unavailable";
                               }
                               return "ok";
                             })
      .def_property_readonly("last_error", locked([](Subscriber& sub) { return sub.last_error(); }))
      .def("close", &PySubscriber::close)
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__", [](PySubscriber& s, const py::object&, const py::object&, const py::object&) {
        s.close();
        return false;
      });
}

}  // namespace shmbus::python
