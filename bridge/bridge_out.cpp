// Bridge out's loop: the channel's records, in order, into a JetStream stream, each publish chained
// to its predecessor by Nats-Expected-Last-Msg-Id, with one recovery path for every failure
// (docs/bridge-design.md, "Bridge out"). Not a hot path: libnats allocates for every message.
#include "shmbus/bridge_out.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <thread>

#include <fmt/format.h>

#include "bridge/nats_handles.hpp"
#include "bridge/out_source.hpp"
#include "bridge/publish_window.hpp"
#include "bridge/record_headers.hpp"
#include "bridge/stream_setup.hpp"
#include "ipc/bridge_segment.hpp"
#include "ipc/channel_view.hpp"
#include "shmbus/subscriber.hpp"

namespace shmbus::bridge {
namespace {

// What the headers of one record take at most (names, values, the id, NATS' framing), for the
// check of a record's size against the server's max_payload.
constexpr std::int64_t kHeaderBytes = 1024;

constexpr std::chrono::milliseconds kMinBackoff{10};
constexpr std::chrono::milliseconds kMaxBackoff{1000};

std::int64_t realtime_now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The stream refuses to store (a full store, its byte limit with Discard new): hold back.
bool refuses_store(jsErrCode code) {
  return code == JSInsufficientResourcesErr || code == JSStreamStoreFailedErr;
}

// JetStream stream names: no '.', '*', '>', space or path separator, at most 63 bytes here.
std::optional<std::string> stream_name_problem(const std::string& name) {
  if (name.empty()) return std::string("a stream name is required (--stream)");
  if (name.size() > 63) return fmt::format("stream name '{}' is longer than 63 bytes", name);
  for (const char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-';
    if (!ok) {
      return fmt::format("stream name '{}' may hold only letters, digits, '_' and '-'", name);
    }
  }
  return std::nullopt;
}

Error invalid(std::string message) { return Error{ErrorCode::invalid_argument, std::move(message)}; }

}  // namespace

using shmbus::detail::BridgeState;

struct Out::Impl {
  OutOptions o;
  ChannelInfo info;
  std::optional<Subscriber> sub;
  // The channel read-only, for its head sequence (the lag shown), and the bridge object that
  // `shmbus stat` reads (and that fences a second bridge out of the same stream).
  std::optional<shmbus::detail::ChannelView> view;
  std::optional<shmbus::detail::BridgeSegment> segment;
  BridgeState state = BridgeState::connecting;
  std::int64_t heartbeat_at_ns = 0;
  // Declared before the connection and the context: members are destroyed in reverse order, so
  // libnats' ack handler, which writes into the window, is gone before the window is.
  std::unique_ptr<PublishWindow> window;
  ConnectionPtr conn;
  JsPtr js;
  std::unique_ptr<OutSource> source;

  std::string last_id;  // the chain: the id of the newest record published (or in the stream)
  // A record read from the source and made into a message, waiting for room in the window.
  std::optional<WindowEntry> pending_entry;
  MsgPtr pending_msg;
  std::chrono::milliseconds backoff{0};
  OutStats stats;
  std::int64_t last_notice_ns = 0;

  void notice(const std::string& text) {
    if (o.notice) {
      o.notice(text);
    } else {
      fmt::print(stderr, "shmbus bridge out: {}\n", text);
    }
  }

  void set_state(BridgeState next, std::string error = {}) {
    state = next;
    stats.state = shmbus::detail::bridge_state_name(next);
    stats.last_error = std::move(error);
    if (segment) segment->set_state(next, stats.last_error);
  }

  // libnats needs a handler to connect in the background. It touches nothing of ours: libnats
  // runs connection callbacks on its own thread, and one may still come (a disconnect while
  // closing) after natsConnection_Destroy returns and this object is gone.
  static void on_connected(natsConnection*, void*) {}

  // Sleeps `d` in short slices, keeping the stats (and the heartbeat) fresh; false if stop was
  // set meanwhile.
  bool nap(std::chrono::milliseconds d, const std::atomic<bool>& stop) {
    const auto until = std::chrono::steady_clock::now() + d;
    // relaxed: a flag; nothing else is published through it.
    while (!stop.load(std::memory_order_relaxed)) {
      const auto now = std::chrono::steady_clock::now();
      if (now >= until) return true;
      update_lag();
      std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
          until - now, std::chrono::milliseconds(20)));
    }
    return false;
  }

  void grow_backoff() {
    backoff = std::clamp(backoff * 2, kMinBackoff, kMaxBackoff);
  }

  Result<bool> setup(const std::atomic<bool>& stop);
  Result<void> publish_some(bool& progressed);
  void publish_entry(std::size_t index, MsgPtr msg, const std::string& expect);
  Subscriber::Cursor retire_oldest();
  bool drain();
  Result<void> recover(const std::atomic<bool>& stop);
  bool wait_resolved(const std::atomic<bool>& stop, bool bounded);
  void discard_window();
  void update_lag();
};

Out::Out(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Out::Out(Out&&) noexcept = default;
Out& Out::operator=(Out&&) noexcept = default;
Out::~Out() = default;

void release_nats() noexcept { close_library(); }

Result<Out> Out::open(const OutOptions& options) {
  auto impl = std::make_unique<Impl>();
  OutOptions& o = impl->o;
  o = options;
  if (o.channel.empty()) return tl::unexpected(invalid("a channel name is required"));
  if (o.nats_url.empty()) return tl::unexpected(invalid("a NATS server URL is required (--nats)"));
  if (auto p = stream_name_problem(o.stream)) return tl::unexpected(invalid(*p));
  if (o.policy != Policy::block && o.policy != Policy::spill) {
    return tl::unexpected(invalid("bridge out reads with policy block or spill, never drop"));
  }
  if (o.window == 0) return tl::unexpected(invalid("the window must be at least 1 record"));
  if (o.ack_timeout.count() <= 0) return tl::unexpected(invalid("the ack timeout must be positive"));
  if (o.subject.empty()) o.subject = "shmbus." + o.channel;
  if (o.name.empty()) o.name = "bridge-out." + o.stream;
  if (o.host.empty()) {
    char buffer[256] = {};
    if (::gethostname(buffer, sizeof buffer - 1) != 0) {
      return tl::unexpected(Error{ErrorCode::system, "gethostname failed: give --host"});
    }
    o.host = buffer;
    if (auto p = host_problem(o.host)) {
      return tl::unexpected(invalid(fmt::format("this machine's {}: give --host", *p)));
    }
  }
  if (auto p = host_problem(o.host)) return tl::unexpected(invalid("--host: " + *p));

  SubscriberOptions so;
  so.policy = o.policy;
  so.name = o.name;
  so.manual_release = true;
  // A new subscriber starts at the earliest record the ring holds; the source skips what the
  // stream has and fills what the ring lost. A resumed one starts where it last released.
  so.start = StartFrom::sequence;
  so.start_sequence = 1;
  so.liveness_timeout = o.liveness_timeout;
  auto sub = Subscriber::open(o.channel, so);
  if (!sub) return tl::unexpected(sub.error());
  impl->sub.emplace(std::move(*sub));
  impl->info = impl->sub->info();
  auto view = shmbus::detail::ChannelView::open(o.channel);
  if (!view) return tl::unexpected(view.error());
  impl->view.emplace(std::move(*view));
  shmbus::detail::BridgeSettings settings;
  settings.role = shmbus::detail::BridgeRole::out;
  settings.stream = o.stream;
  settings.subject = o.subject;
  settings.url = o.nats_url;
  settings.host = o.host;
  auto segment = shmbus::detail::BridgeSegment::open_owned(impl->info, settings);
  if (!segment) return tl::unexpected(segment.error());
  impl->segment.emplace(std::move(*segment));

  impl->window = std::make_unique<PublishWindow>(o.window);
  ConnectSettings cs;
  cs.url = o.nats_url;
  cs.name = fmt::format("shmbus bridge out {} ({})", o.channel, o.host);
  cs.on_connected = &Impl::on_connected;
  auto conn = connect(cs);
  if (!conn) {
    Error e = to_error(conn.error(), fmt::format("connecting to '{}'", o.nats_url));
    e.code = ErrorCode::invalid_argument;
    return tl::unexpected(e);
  }
  impl->conn = std::move(*conn);
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = o.ack_timeout.count();  // requests: stream info, last message
  // libnats never stalls the bridge: the window bounds what is in flight below this.
  jo.PublishAsync.MaxPending = static_cast<std::int64_t>(o.window) + 64;
  jo.PublishAsync.AckHandler = &PublishWindow::on_ack;
  jo.PublishAsync.AckHandlerClosure = impl->window.get();
  jo.PublishAsync.StallWait = o.ack_timeout.count();
  auto js = jetstream(impl->conn.get(), &jo);
  if (!js) return tl::unexpected(to_error(js.error(), "creating the JetStream context"));
  impl->js = std::move(*js);
  impl->stats.window = o.window;
  impl->set_state(BridgeState::connecting);
  return Out(std::move(impl));
}

// The stream made or checked, and where to resume. False when stop was set first.
Result<bool> Out::Impl::setup(const std::atomic<bool>& stop) {
  StreamSpec spec;
  spec.stream = o.stream;
  spec.subject = o.subject;
  spec.create = o.create_stream;
  spec.max_bytes = o.max_bytes;
  std::optional<LastRecord> last;
  backoff = std::chrono::milliseconds(0);
  for (;;) {
    // relaxed: a flag; nothing else is published through it.
    if (stop.load(std::memory_order_relaxed)) return false;
    auto facts = ensure_stream(js.get(), spec);
    if (facts) {
      auto got = read_last_record(js.get(), o.stream, o.subject);
      if (got) {
        last = std::move(*got);
        break;
      }
      if (!got.error().transient) return tl::unexpected(Error{ErrorCode::invalid_argument, got.error().text});
      set_state(BridgeState::connecting, got.error().text);
    } else {
      if (!facts.error().transient) {
        return tl::unexpected(Error{ErrorCode::invalid_argument, facts.error().text});
      }
      set_state(BridgeState::connecting, facts.error().text);
    }
    grow_backoff();
    if (!nap(backoff, stop)) return false;
  }
  backoff = std::chrono::milliseconds(0);

  const std::int64_t max_payload = natsConnection_GetMaxPayload(conn.get());
  if (max_payload > 0 && static_cast<std::int64_t>(info.max_message) + kHeaderBytes > max_payload) {
    return tl::unexpected(invalid(fmt::format(
        "channel '{}' allows records of {} bytes, which with the bridge's headers exceed the "
        "server's max_payload of {} bytes: raise max_payload or use a smaller max_message",
        o.channel, info.max_message, max_payload)));
  }

  std::uint64_t next = 1;
  if (last) {
    last_id = last->id;
    if (last->headers.incarnation == info.incarnation) {
      next = last->headers.last_sequence() + 1;
      stats.acked_through = last->headers.last_sequence();
      notice(fmt::format("stream '{}' holds channel '{}' up to sequence {}: resuming at {}",
                         o.stream, o.channel, stats.acked_through, next));
    } else {
      notice(fmt::format("stream '{}' ends with a record of another incarnation of the channel "
                         "({}): publishing this incarnation from sequence 1",
                         o.stream, last->id));
    }
  }
  OutSourceOptions so;
  so.next = next;
  so.journal_dir = o.journal_dir;
  so.notice = [this](const std::string& text) { notice(text); };
  source = std::make_unique<OutSource>(*sub, std::move(so));
  set_state(BridgeState::running);
  return true;
}

void Out::Impl::publish_entry(std::size_t index, MsgPtr msg, const std::string& expect) {
  const std::string id = window->at(index).id;
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MsgId = id.c_str();
  po.MaxWait = o.ack_timeout.count();
  if (expect.empty()) {
    po.ExpectNoMessage = true;
  } else {
    po.ExpectLastMsgId = expect.c_str();
  }
  natsMsg* raw = msg.release();
  const natsStatus s = js_PublishMsgAsync(js.get(), &raw, &po);
  if (s != NATS_OK) {
    // Still ours (raw is not cleared on failure): kept for the resend.
    const NatsError e = nats_error(s);
    window->disarm(index, PublishOutcome{s, static_cast<jsErrCode>(0), e.text, false, 0}, raw);
  }
}

Result<void> Out::Impl::publish_some(bool& progressed) {
  for (int budget = 1024; budget > 0; --budget) {
    if (!pending_entry) {
      OutRecord r;
      const OutSource::Status st = source->next(r);
      if (st == OutSource::Status::failed) return tl::unexpected(Error{ErrorCode::system, source->last_error()});
      if (st == OutSource::Status::idle) return {};
      WindowEntry entry;
      entry.headers.kind = r.kind;
      entry.headers.incarnation = info.incarnation;
      entry.headers.sequence = r.sequence;
      entry.headers.count = r.count;
      entry.headers.time_ns = r.time_ns;
      entry.headers.origin = o.host;
      entry.headers.key.assign(reinterpret_cast<const char*>(r.key.data()), r.key.size());
      entry.headers.message_type = r.message_type;
      entry.id = msg_id(entry.headers);
      entry.release = r.release;
      natsMsg* raw = nullptr;
      // natsMsg_Create copies the payload: the source's view may go with its next call.
      const natsStatus s = natsMsg_Create(&raw, o.subject.c_str(), nullptr,
                                          reinterpret_cast<const char*>(r.payload.data()),
                                          static_cast<int>(r.payload.size()));
      if (s != NATS_OK) return tl::unexpected(to_error(nats_error(s), "creating a NATS message"));
      MsgPtr msg(raw);
      if (auto set = set_headers(raw, entry.headers); !set) {
        return tl::unexpected(Error{ErrorCode::system,
                                    fmt::format("record {}: {}", entry.id, set.error())});
      }
      pending_entry = std::move(entry);
      pending_msg = std::move(msg);
    }
    if (window->size() >= window->capacity() || !window->has_room(pending_entry->headers.sequence)) {
      return {};
    }
    pending_entry->published_ns = realtime_now_ns();
    window->add(std::move(*pending_entry));
    pending_entry.reset();
    publish_entry(window->size() - 1, std::move(pending_msg), last_id);
    last_id = window->at(window->size() - 1).id;
    progressed = true;
  }
  return {};
}

// Takes the window's oldest record as acknowledged by the stream: counts it and returns the
// subscriber cursor after it, which may be released.
Subscriber::Cursor Out::Impl::retire_oldest() {
  const WindowEntry e = window->pop_oldest();
  stats.acked_through = e.headers.last_sequence();
  ++stats.acked;
  if (e.headers.kind == RecordKind::gap) {
    ++stats.gaps;
    stats.gap_sequences += e.headers.count;
  }
  return e.release;
}

bool Out::Impl::drain() {
  std::optional<Subscriber::Cursor> release;
  while (!window->empty() && window->state(0) == PublishWindow::State::stored) {
    release = retire_oldest();
  }
  if (!release) return false;
  // The stream has everything up to here: the ring (or the journal) may let it go.
  sub->release(*release);
  backoff = std::chrono::milliseconds(0);
  if (state != BridgeState::running) set_state(BridgeState::running);
  return true;
}

// Waits until no publish of the window is in flight (each is bounded by its MaxWait). With
// `bounded` (a stop), gives up after the ack timeout. False if it gave up.
bool Out::Impl::wait_resolved(const std::atomic<bool>& stop, bool bounded) {
  const auto limit = std::chrono::steady_clock::now() + o.ack_timeout + std::chrono::milliseconds(500);
  for (;;) {
    bool resolved = true;
    for (std::size_t i = 0; i < window->size(); ++i) {
      if (window->state(i) == PublishWindow::State::in_flight) {
        resolved = false;
        break;
      }
    }
    if (resolved) return true;
    // relaxed: a flag; nothing else is published through it.
    if ((bounded || stop.load(std::memory_order_relaxed)) &&
        std::chrono::steady_clock::now() > limit) {
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void Out::Impl::discard_window() {
  while (!window->empty()) (void)window->pop_oldest();
  pending_entry.reset();
  pending_msg.reset();
}

Result<void> Out::Impl::recover(const std::atomic<bool>& stop) {
  ++stats.recoveries;
  // 1. Every publish resolved: what the stream holds no longer changes under us.
  if (!wait_resolved(stop, false)) return {};  // stopping
  // 2. Why, and whether the stream refuses to store (then hold back, never drop).
  std::string why;
  bool refused = false;
  for (std::size_t i = 0; i < window->size(); ++i) {
    if (window->state(i) != PublishWindow::State::failed) continue;
    const PublishOutcome& oc = window->outcome(i);
    if (why.empty()) why = NatsError{oc.status, oc.js_code, oc.text}.describe();
    if (refuses_store(oc.js_code)) {
      refused = true;
      why = NatsError{oc.status, oc.js_code, oc.text}.describe();
      break;
    }
  }
  if (refused) {
    if (state != BridgeState::holding_back) notice("holding back: the stream refuses records: " + why);
    set_state(BridgeState::holding_back, why);
  } else {
    set_state(BridgeState::recovering, why);
  }
  grow_backoff();
  if (!nap(backoff, stop)) return {};

  // 3. What the stream holds.
  std::optional<LastRecord> last;
  for (;;) {
    auto got = read_last_record(js.get(), o.stream, o.subject);
    if (got) {
      last = std::move(*got);
      break;
    }
    if (!got.error().transient) return tl::unexpected(Error{ErrorCode::system, got.error().text});
    set_state(refused ? BridgeState::holding_back : BridgeState::recovering, got.error().text);
    grow_backoff();
    if (!nap(backoff, stop)) return {};
  }
  std::uint64_t stream_last = 0;
  if (last && last->headers.incarnation == info.incarnation) {
    stream_last = last->headers.last_sequence();
  } else if (last && stats.acked_through > 0) {
    return tl::unexpected(Error{
        ErrorCode::system,
        fmt::format("stream '{}' now ends with {}, a record of another channel incarnation: "
                    "another writer uses the stream",
                    o.stream, last->id)});
  }

  // 4. Everything up to the stream's last is in: acknowledged.
  std::optional<Subscriber::Cursor> release;
  while (!window->empty() && window->oldest().headers.last_sequence() <= stream_last) {
    release = retire_oldest();
  }
  if (release) sub->release(*release);

  bool lost_acknowledged = stream_last < stats.acked_through;
  for (std::size_t i = 0; i < window->size() && !lost_acknowledged; ++i) {
    // A record the stream acknowledged but no longer holds.
    if (window->state(i) == PublishWindow::State::stored) lost_acknowledged = true;
  }
  if (lost_acknowledged) {
    notice(fmt::format("stream '{}' lost records it had acknowledged: it ends at sequence {}; "
                       "publishing again from {} (from the ring, the journal, or as a GAP)",
                       o.stream, stream_last, stream_last + 1));
    discard_window();
    source->rewind(stream_last + 1);
    stats.acked_through = stream_last;
    last_id = last ? last->id : std::string();
    return {};
  }
  if (!window->empty() && window->oldest().headers.sequence != stream_last + 1) {
    return tl::unexpected(Error{
        ErrorCode::system,
        fmt::format("stream '{}' ends with {}, which does not line up with the bridge's next "
                    "record {}: another writer uses the stream",
                    o.stream, last ? last->id : std::string("nothing"), window->oldest().id)});
  }

  // 5. The rest again, in order, each chained to its actual predecessor.
  std::string prev = last ? last->id : std::string();
  for (std::size_t i = 0; i < window->size(); ++i) {
    MsgPtr old(window->take_message(i));
    if (!old) {
      return tl::unexpected(Error{ErrorCode::system,
                                  fmt::format("no message kept to resend {}", window->at(i).id)});
    }
    natsMsg* raw = nullptr;
    natsStatus s = natsMsg_Create(&raw, o.subject.c_str(), nullptr, natsMsg_GetData(old.get()),
                                  natsMsg_GetDataLength(old.get()));
    if (s != NATS_OK) return tl::unexpected(to_error(nats_error(s), "creating a NATS message"));
    MsgPtr fresh(raw);
    if (auto set = set_headers(raw, window->at(i).headers); !set) {
      return tl::unexpected(Error{ErrorCode::system, set.error()});
    }
    window->rearm(i, realtime_now_ns());
    publish_entry(i, std::move(fresh), prev);
    prev = window->at(i).id;
    ++stats.resends;
  }
  last_id = prev;
  return {};
}

void Out::Impl::update_lag() {
  stats.in_flight = window->size();
  const std::int64_t now = realtime_now_ns();
  const core::TailWord head = view->ring().load_tail();
  const std::uint64_t head_sequence = head.next_sequence > 0 ? head.next_sequence - 1 : 0;
  stats.lag_records = head_sequence > stats.acked_through ? head_sequence - stats.acked_through : 0;
  stats.lag_ns = window->empty() ? 0 : std::max<std::int64_t>(0, now - window->oldest().headers.time_ns);
  if (!segment) return;
  shmbus::detail::BridgeCounters& c = segment->counters();
  // relaxed, each: statistics for `shmbus stat`, which reads each word on its own.
  c.published_or_applied.store(stats.acked, std::memory_order_relaxed);
  c.acked_through.store(stats.acked_through, std::memory_order_relaxed);  // relaxed: as above
  c.in_flight.store(stats.in_flight, std::memory_order_relaxed);          // relaxed: as above
  c.window.store(stats.window, std::memory_order_relaxed);                // relaxed: as above
  c.resends.store(stats.resends, std::memory_order_relaxed);              // relaxed: as above
  c.recoveries.store(stats.recoveries, std::memory_order_relaxed);        // relaxed: as above
  c.gaps.store(stats.gaps, std::memory_order_relaxed);                    // relaxed: as above
  c.gap_sequences.store(stats.gap_sequences, std::memory_order_relaxed);  // relaxed: as above
  c.lag_records.store(stats.lag_records, std::memory_order_relaxed);      // relaxed: as above
  c.lag_ns.store(static_cast<std::uint64_t>(stats.lag_ns), std::memory_order_relaxed);  // as above
  c.head_sequence.store(head_sequence, std::memory_order_relaxed);        // relaxed: as above
  if (now - heartbeat_at_ns >= 100'000'000) {
    heartbeat_at_ns = now;
    segment->heartbeat();
  }
}

Result<void> Out::run(const std::atomic<bool>& stop) {
  Impl& m = *impl_;
  auto ready = m.setup(stop);
  if (!ready) {
    m.set_state(BridgeState::stopped, ready.error().message);
    return tl::unexpected(ready.error());
  }
  if (*ready) {
    // relaxed: a flag; nothing else is published through it.
    while (!stop.load(std::memory_order_relaxed)) {
      bool progressed = m.drain();
      if (!m.window->empty() && m.window->state(0) == PublishWindow::State::failed) {
        if (auto r = m.recover(stop); !r) {
          m.set_state(BridgeState::stopped, r.error().message);
          return r;
        }
        continue;
      }
      if (auto r = m.publish_some(progressed); !r) {
        m.set_state(BridgeState::stopped, r.error().message);
        return r;
      }
      m.update_lag();
      if (progressed) continue;
      if (m.pending_entry || !m.window->empty()) {
        // Waiting for acks (the ring may have more, but the window is full).
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      } else {
        m.sub->wait(std::chrono::milliseconds(1));
      }
    }
    // A clean stop: what is in flight gets up to the ack timeout; the rest is resent by the next
    // run (the subscriber keeps it: it is not released).
    m.wait_resolved(stop, true);
    m.drain();
    m.update_lag();
  }
  m.set_state(BridgeState::stopped);
  return {};
}

OutStats Out::stats() const { return impl_->stats; }

}  // namespace shmbus::bridge
