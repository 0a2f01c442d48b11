// Bridge in's loop (include/shmbus/bridge_in.hpp): a durable pull consumer, strict header decode,
// the apply rules of bridge/in_apply, and AckAll acknowledgements after the local commits.
//
// The stream order is what makes the stream sequence an exact dedupe key, so bridge in never
// applies a message out of it. JetStream breaks that order in one case: messages delivered to a
// fetch that never reached us (a killed predecessor, a request lost in a server restart) come back
// only after AckWait, and later ones are delivered meanwhile. The bridge-in object knows exactly
// what was applied, so the consumer is re-created to start right after it: at every start, and
// whenever a message arrives beyond the next expected stream sequence. A consumer started at a
// sequence delivers the first message the stream holds from there, so a sequence missing after a
// re-creation is truly gone (the apply rules turn the origin sequences it held into lost ones).
//
// Not on any application's hot path: libnats allocates per message, and this loop may too.
#include "shmbus/bridge_in.hpp"

#include <unistd.h>

#include <algorithm>
#include <optional>
#include <string>
#include <thread>

#include <fmt/format.h>

#include "bridge/in_apply.hpp"
#include "bridge/nats_handles.hpp"
#include "bridge/record_headers.hpp"
#include "ipc/bridge_segment.hpp"
#include "shmbus/publisher.hpp"

namespace shmbus::bridge {
namespace {

using Clock = std::chrono::steady_clock;
using shmbus::detail::BridgeState;

constexpr std::int64_t kFetchWaitMs = 500;  // a fetch's longest wait: stop is seen within it
constexpr auto kRetryPause = std::chrono::milliseconds(200);
constexpr auto kConnectPoll = std::chrono::milliseconds(10);  // libnats connects in the background
constexpr int kErrorsBeforeResubscribe = 10;  // consecutive failed fetches (about 2 s)

std::int64_t realtime_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Result<std::string> default_host() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0) {
    return tl::unexpected(Error{ErrorCode::system, "bridge in: gethostname failed: give --host"});
  }
  return std::string(name);
}

std::string default_durable(std::string_view host, std::string_view channel) {
  std::string d = fmt::format("shmbus-in-{}-{}", host, channel);
  std::replace(d.begin(), d.end(), '.', '_');  // JetStream durable names take no dots
  return d;
}

// A durable name JetStream accepts: no dots, spaces, '*', '>', path separators; 1-255 chars.
std::optional<std::string> durable_problem(std::string_view d) {
  if (d.empty() || d.size() > 255) return "it must have 1 to 255 characters";
  for (char c : d) {
    if (c == '.' || c == '*' || c == '>' || c == '/' || c == '\\' || c <= ' ' || c == 0x7f) {
      return fmt::format("it may not contain '{}'", c);
    }
  }
  return std::nullopt;
}

void sleep_unless_stopped(const std::atomic<bool>& stop, std::chrono::milliseconds total) {
  const auto until = Clock::now() + total;
  // relaxed: a flag polled by this loop; nothing is published through it.
  while (!stop.load(std::memory_order_relaxed) && Clock::now() < until) {
    std::this_thread::sleep_for(std::min<Clock::duration>(std::chrono::milliseconds(10),
                                                          until - Clock::now()));
  }
}

// libnats needs a handler to connect in the background; what the state needs it reads from
// natsConnection_Status, so the handler does nothing (and so cannot outlive anything it uses).
void on_connected(natsConnection*, void*) {}

}  // namespace

struct In::State {
  InOptions options;
  std::string host;
  std::string durable;
  std::string subject;  // the stream's, once known
  // The local side. The applier points at the publisher and the segment: all three stay here.
  std::optional<Publisher> publisher;
  std::optional<shmbus::detail::BridgeSegment> segment;
  std::optional<InApplier> applier;
  // NATS, destroyed in reverse order (subscription, context, connection).
  ConnectionPtr connection;
  JsPtr js;
  SubscriptionPtr subscription;
  std::uint64_t stream_created_ns = 0;
  // The next stream sequence in order; 0: whatever comes first (a consumer just created).
  std::uint64_t expected = 0;
  std::string last_reported;  // the last waiting/error line, so that a retry loop says it once

  ~State() {
    subscription.reset();
    js.reset();
    connection.reset();
  }

  void report(std::string_view line) const {
    if (options.report) options.report(line);
  }
  // Reports a line of a retry loop once until a different one comes.
  void report_once(const std::string& line) {
    if (line == last_reported) return;
    last_reported = line;
    report(line);
  }
  void set_state(BridgeState state, std::string_view why = {}) { segment->set_state(state, why); }
  shmbus::detail::BridgeCounters& counters() { return segment->counters(); }

  Result<void> connect();
  // Reads the stream, chooses where to start, re-creates the consumer there and subscribes.
  // `start`: a stream sequence to start at (0: from the applied position or the consumer's).
  NatsResult<void> subscribe(std::uint64_t start);
  // Applies a fetched batch; acks its last message handled. An error stops bridge in.
  Result<void> process(MsgList& batch, const std::atomic<bool>& stop);
  void ack(natsMsg* msg);
  void housekeeping();
};

Result<void> In::State::connect() {
  ConnectSettings cs;
  cs.url = options.nats_url;
  cs.name = fmt::format("shmbus bridge in {} <- {}", options.channel, options.stream);
  cs.on_connected = on_connected;
  auto c = bridge::connect(cs);
  if (!c) return tl::unexpected(to_error(c.error(), fmt::format("bridge in: connecting to {}",
                                                                options.nats_url)));
  connection = std::move(*c);
  jsOptions jo;
  jsOptions_Init(&jo);
  auto j = jetstream(connection.get(), &jo);
  if (!j) return tl::unexpected(to_error(j.error(), "bridge in: JetStream context"));
  js = std::move(*j);
  return {};
}

NatsResult<void> In::State::subscribe(std::uint64_t start) {
  subscription.reset();
  jsErrCode jerr = static_cast<jsErrCode>(0);
  jsStreamInfo* raw_info = nullptr;
  natsStatus s = js_GetStreamInfo(&raw_info, js.get(), options.stream.c_str(), nullptr, &jerr);
  if (s != NATS_OK) return tl::unexpected(nats_error(s, jerr));
  StreamInfoPtr info(raw_info);
  if (info->Config == nullptr) return tl::unexpected(nats_error(NATS_ERR, jerr, "no stream config"));
  if (options.subject.empty()) {
    if (info->Config->SubjectsLen != 1) {
      return tl::unexpected(nats_error(
          NATS_INVALID_ARG, jerr,
          fmt::format("stream '{}' has {} subjects: name the one to read with --subject",
                      options.stream, info->Config->SubjectsLen)
              .c_str()));
    }
    subject = info->Config->Subjects[0];
  } else {
    subject = options.subject;
  }
  stream_created_ns = static_cast<std::uint64_t>(info->Created);

  if (start == 0) {
    const InApplier::Position& a = applier->applied();
    if (a.stream_seq != 0 && a.stream_created_ns == stream_created_ns) {
      start = a.stream_seq + 1;  // exactly after what this channel holds
    } else {
      // No position for this stream here (a new channel incarnation, a re-created stream): the
      // consumer's acknowledged floor is the best knowledge of what was applied.
      jsConsumerInfo* raw_ci = nullptr;
      jerr = static_cast<jsErrCode>(0);
      s = js_GetConsumerInfo(&raw_ci, js.get(), options.stream.c_str(), durable.c_str(), nullptr,
                             &jerr);
      ConsumerInfoPtr ci(raw_ci);
      if (s == NATS_OK && ci && ci->AckFloor.Stream != 0) start = ci->AckFloor.Stream + 1;
    }
  }
  // Re-created: whatever a previous consumer had delivered and not seen acknowledged would come
  // back only after AckWait, behind later messages.
  jerr = static_cast<jsErrCode>(0);
  s = js_DeleteConsumer(js.get(), options.stream.c_str(), durable.c_str(), nullptr, &jerr);
  if (s != NATS_OK && jerr != JSConsumerNotFoundErr && s != NATS_NOT_FOUND) {
    return tl::unexpected(nats_error(s, jerr));
  }
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = options.stream.c_str();
  so.Config.AckPolicy = js_AckAll;
  so.Config.AckWait = std::chrono::duration_cast<std::chrono::nanoseconds>(options.ack_wait).count();
  so.Config.MaxAckPending = 4 * static_cast<std::int64_t>(options.batch);
  so.Config.MaxDeliver = -1;
  if (start > 1) {
    so.Config.DeliverPolicy = js_DeliverByStartSequence;
    so.Config.OptStartSeq = start;
  } else {
    so.Config.DeliverPolicy = js_DeliverAll;
  }
  natsSubscription* raw_sub = nullptr;
  jerr = static_cast<jsErrCode>(0);
  s = js_PullSubscribe(&raw_sub, js.get(), subject.c_str(), durable.c_str(), nullptr, &so, &jerr);
  if (s != NATS_OK) return tl::unexpected(nats_error(s, jerr));
  subscription.reset(raw_sub);
  expected = 0;  // the consumer starts at the first message the stream holds from `start`
  return {};
}

void In::State::ack(natsMsg* msg) {
  // AckAll: acknowledges every message up to this one, all committed locally. A lost ack only
  // means a redelivery, which the apply rules skip.
  const natsStatus s = natsMsg_Ack(msg, nullptr);
  if (s != NATS_OK) report_once(fmt::format("acknowledging: {}", nats_error(s).describe()));
}

Result<void> In::State::process(MsgList& batch, const std::atomic<bool>& stop) {
  auto& c = counters();
  natsMsg* last_done = nullptr;  // the last message handled: acknowledged (AckAll) at the end
  for (int i = 0; i < batch.size(); ++i) {
    natsMsg* m = batch[i];
    jsMsgMetaData* raw_md = nullptr;
    const natsStatus ms = natsMsg_GetMetaData(&raw_md, m);
    MetaDataPtr md(raw_md);
    if (ms != NATS_OK || !md) {
      if (last_done != nullptr) ack(last_done);
      return tl::unexpected(to_error(nats_error(ms), "bridge in: a fetched message without "
                                                     "JetStream metadata"));
    }
    const std::uint64_t seq = md->Sequence.Stream;
    if (expected != 0 && seq > expected) {
      // Out of order: expected .. seq - 1 went to a fetch we never saw. Start over right after
      // what was handled; nothing after it is acknowledged.
      if (last_done != nullptr) ack(last_done);
      report(fmt::format("stream sequence {} arrived while {} was expected: restarting the "
                         "consumer at {}",
                         seq, expected, expected));
      c.recoveries.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic
      auto r = subscribe(expected);
      if (!r) {
        report(fmt::format("re-creating the consumer: {}", r.error().describe()));
        subscription.reset();  // the loop subscribes again
      }
      return {};
    }
    expected = std::max(expected, seq + 1);
    auto headers = read_headers(m);
    if (!headers) {
      c.invalid.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic
      report(fmt::format("stream sequence {} is not a shmbus record ({}): acknowledged, not "
                         "applied",
                         seq, headers.error()));
      applier->skip(seq, stream_created_ns);
      last_done = m;
      continue;
    }
    const RecordHeaders& h = *headers;
    IncomingRecord in;
    in.stream_seq = seq;
    in.stream_created_ns = stream_created_ns;
    in.origin_host = h.origin;
    in.origin_incarnation = h.incarnation;
    in.origin_seq = h.sequence;
    in.kind = h.kind == RecordKind::gap ? IncomingKind::gap : IncomingKind::data;
    in.gap_count = h.kind == RecordKind::gap ? h.count : 0;
    in.origin_time_ns = h.time_ns;
    in.key = std::as_bytes(std::span(h.key.data(), h.key.size()));
    in.message_type = h.message_type;
    in.payload = std::span(reinterpret_cast<const std::byte*>(natsMsg_GetData(m)),
                           static_cast<std::size_t>(std::max(0, natsMsg_GetDataLength(m))));
    auto since = Clock::now();
    bool holding = false;
    for (;;) {
      auto r = applier->apply(in);
      if (!r) {
        if (last_done != nullptr) ack(last_done);
        return tl::unexpected(r.error());
      }
      if (*r != ApplyOutcome::back_pressured) break;
      if (!holding) {
        holding = true;
        set_state(BridgeState::holding_back, "the local channel is full (a block subscriber)");
      }
      // relaxed: a flag polled by this loop.
      if (stop.load(std::memory_order_relaxed)) {
        if (last_done != nullptr) ack(last_done);
        return {};
      }
      if (Clock::now() - since > options.ack_wait / 3) {
        // Keeps the unacknowledged messages of the batch from being redelivered meanwhile.
        for (int j = 0; j < batch.size(); ++j) (void)natsMsg_InProgress(batch[j], nullptr);
        since = Clock::now();
      }
      segment->heartbeat();
    }
    if (holding) set_state(BridgeState::running);
    last_done = m;
    c.lag_records.store(md->NumPending, std::memory_order_relaxed);  // relaxed: a statistic
    const std::int64_t behind = md->NumPending == 0 ? 0 : realtime_ns() - h.time_ns;
    // relaxed: a statistic.
    c.lag_ns.store(static_cast<std::uint64_t>(std::max<std::int64_t>(0, behind)),
                   std::memory_order_relaxed);
  }
  if (last_done != nullptr) ack(last_done);
  return {};
}

void In::State::housekeeping() {
  segment->heartbeat();
  // relaxed: statistics; nothing is pending, so nothing lags.
  counters().lag_records.store(0, std::memory_order_relaxed);
  counters().lag_ns.store(0, std::memory_order_relaxed);  // relaxed: as above
}

In::In(std::unique_ptr<State> state) noexcept : state_(std::move(state)) {}
In::In(In&&) noexcept = default;
In& In::operator=(In&&) noexcept = default;
In::~In() = default;

const std::string& In::host() const noexcept { return state_->host; }
const std::string& In::durable() const noexcept { return state_->durable; }

Result<In> In::open(const InOptions& options) {
  auto bad = [](std::string text) { return tl::unexpected(Error{ErrorCode::invalid_argument, std::move(text)}); };
  if (options.channel.empty()) return bad("bridge in: no channel given");
  if (options.nats_url.empty()) return bad("bridge in: no NATS URL given (--nats)");
  if (options.stream.empty()) return bad("bridge in: no stream given (--stream)");
  if (options.batch < 1 || options.batch > 4096) {
    return bad(fmt::format("bridge in: batch {} is outside 1-4096", options.batch));
  }
  if (options.ack_wait < std::chrono::milliseconds(100)) {
    return bad(fmt::format("bridge in: ack wait {} ms is below 100 ms", options.ack_wait.count()));
  }
  auto state = std::make_unique<State>();
  State& s = *state;
  s.options = options;
  if (options.host.empty()) {
    auto h = default_host();
    if (!h) return tl::unexpected(h.error());
    s.host = *h;
  } else {
    s.host = options.host;
  }
  if (auto why = host_problem(s.host)) {
    return bad(fmt::format("bridge in: host '{}' cannot be a Shmbus-Origin: {}", s.host, *why));
  }
  s.durable = options.durable.empty() ? default_durable(s.host, options.channel) : options.durable;
  if (auto why = durable_problem(s.durable)) {
    return bad(fmt::format("bridge in: durable name '{}': {}", s.durable, *why));
  }

  ChannelOptions co;
  co.single_producer = true;
  if (options.capacity != 0) co.capacity = options.capacity;
  if (options.max_message != 0) co.max_message = options.max_message;
  co.accept_existing = options.capacity == 0 && options.max_message == 0;
  auto pub = Publisher::open(options.channel, co);
  if (!pub) return tl::unexpected(pub.error());
  if (!pub->info().single_producer) {
    return bad(fmt::format("bridge in: channel '{}' exists as a multi-producer channel; bridge in "
                           "must be its only producer (its exactly-once restart relies on it): "
                           "remove the channel or bridge into another one",
                           options.channel));
  }
  s.publisher.emplace(std::move(*pub));
  shmbus::detail::BridgeSettings settings;
  settings.role = shmbus::detail::BridgeRole::in;
  settings.stream = options.stream;
  settings.subject = options.subject;
  settings.url = options.nats_url;
  settings.host = s.host;
  auto segment = shmbus::detail::BridgeSegment::open_owned(s.publisher->info(), settings);
  if (!segment) return tl::unexpected(segment.error());
  s.segment.emplace(std::move(*segment));
  s.set_state(BridgeState::connecting);

  ApplierOptions ao;
  ao.host = s.host;
  ao.report = options.report;
  auto applier = InApplier::open(*s.publisher, *s.segment, std::move(ao));
  if (!applier) return tl::unexpected(applier.error());
  s.applier.emplace(std::move(*applier));

  if (auto lib = open_library(); !lib) return tl::unexpected(to_error(lib.error(), "bridge in"));
  if (auto c = s.connect(); !c) return tl::unexpected(c.error());
  return In(std::move(state));
}

Result<void> In::run(const std::atomic<bool>& stop) {
  State& s = *state_;
  int failed_fetches = 0;
  // relaxed: a flag polled by this loop; nothing is published through it.
  while (!stop.load(std::memory_order_relaxed)) {
    s.segment->heartbeat();
    if (!s.subscription) {
      if (natsConnection_Status(s.connection.get()) != NATS_CONN_STATUS_CONNECTED) {
        s.set_state(BridgeState::connecting);
        s.report_once(fmt::format("waiting for the NATS server at {}", s.options.nats_url));
        sleep_unless_stopped(stop, kConnectPoll);
        continue;
      }
      auto r = s.subscribe(0);
      if (!r) {
        const std::string why = r.error().is(JSStreamNotFoundErr)
                                    ? fmt::format("waiting for stream '{}'", s.options.stream)
                                    : fmt::format("subscribing to stream '{}': {}",
                                                  s.options.stream, r.error().describe());
        s.set_state(BridgeState::connecting, why);
        s.report_once(why);
        sleep_unless_stopped(stop, kRetryPause);
        continue;
      }
      s.last_reported.clear();
      s.set_state(BridgeState::running);
      s.report(fmt::format("consuming stream '{}' subject '{}' as '{}'", s.options.stream,
                           s.subject, s.durable));
    }
    MsgList batch;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    const natsStatus st = natsSubscription_Fetch(batch.get(), s.subscription.get(),
                                                 static_cast<int>(s.options.batch), kFetchWaitMs,
                                                 &jerr);
    if (st == NATS_TIMEOUT || (st == NATS_OK && batch.size() == 0)) {
      failed_fetches = 0;
      s.housekeeping();
      continue;
    }
    if (st != NATS_OK) {
      const NatsError e = nats_error(st, jerr);
      s.set_state(BridgeState::recovering, e.describe());
      s.report_once(fmt::format("fetching: {}", e.describe()));
      if (++failed_fetches >= kErrorsBeforeResubscribe || jerr == JSConsumerNotFoundErr) {
        s.subscription.reset();  // the consumer (or the stream) may be gone: subscribe again
        failed_fetches = 0;
      }
      sleep_unless_stopped(stop, kRetryPause);
      continue;
    }
    if (failed_fetches != 0) s.set_state(BridgeState::running);
    failed_fetches = 0;
    if (auto r = s.process(batch, stop); !r) {
      s.set_state(BridgeState::stopped, r.error().message);
      return r;
    }
  }
  s.set_state(BridgeState::stopped);
  return {};
}

}  // namespace shmbus::bridge
