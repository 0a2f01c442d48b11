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
// The pull requests are made here rather than by natsSubscription_Fetch: libnats 3.4.1's Fetch
// writes past the array it allocates for a batch when messages of an earlier, expired request are
// still queued (seen as heap corruption under load). Bridge in sends `$JS.API.CONSUMER.MSG.NEXT`
// requests itself on a plain inbox subscription, reads the JetStream position from each message's
// `$JS.ACK` reply subject and acknowledges by publishing to it.
//
// Not on any application's hot path: libnats allocates per message, and this loop may too.
#include "shmbus/bridge_in.hpp"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <string_view>
#include <vector>
#include <optional>
#include <string>
#include <thread>
#include <utility>

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
constexpr auto kStallCheckInterval = std::chrono::milliseconds(1000);

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

// Where a fetched message stands in the stream, from its `$JS.ACK` reply subject:
//   $JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>
// or, with a domain and account hash (newer servers),
//   $JS.ACK.<domain>.<account>.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>[.<token>]
struct AckPosition {
  std::uint64_t stream_seq = 0;
  std::uint64_t pending = 0;
};

std::optional<AckPosition> parse_ack_subject(const char* reply) {
  if (reply == nullptr) return std::nullopt;
  std::string_view rest(reply);
  constexpr std::string_view kPrefix = "$JS.ACK.";
  if (!rest.starts_with(kPrefix)) return std::nullopt;
  rest.remove_prefix(kPrefix.size());
  std::vector<std::string_view> tokens;
  while (true) {
    const auto dot = rest.find('.');
    tokens.push_back(rest.substr(0, dot));
    if (dot == std::string_view::npos) break;
    rest.remove_prefix(dot + 1);
  }
  std::size_t first_number = 0;  // the index of <delivered>
  if (tokens.size() == 7) {
    first_number = 2;
  } else if (tokens.size() == 9 || tokens.size() == 10) {
    first_number = 4;
  } else {
    return std::nullopt;
  }
  auto number = [](std::string_view t) -> std::optional<std::uint64_t> {
    std::uint64_t v = 0;
    const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    if (ec != std::errc() || end != t.data() + t.size() || t.empty()) return std::nullopt;
    return v;
  };
  const auto seq = number(tokens[first_number + 1]);
  const auto pending = number(tokens[first_number + 4]);
  if (!seq || !pending || *seq == 0) return std::nullopt;
  return AckPosition{*seq, *pending};
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
  SubscriptionPtr subscription;  // a plain subscription on `inbox`, where fetched messages come
  std::string inbox;
  std::string next_subject;  // $JS.API.CONSUMER.MSG.NEXT.<stream>.<durable>
  std::uint64_t stream_created_ns = 0;
  // The next stream sequence in order; 0: whatever comes first (a consumer just created).
  std::uint64_t expected = 0;
  // Set by process(): re-create the consumer at this stream sequence (0: no need) once the
  // fetched batch is gone. A fetched message points at its subscription (an ack goes through
  // it), so a subscription is never destroyed while messages fetched from it are alive.
  std::uint64_t restart_at = 0;
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
  // Asks the consumer for up to `batch` messages and gathers them for at most `wait_ms`. Messages
  // of an earlier request that arrive meanwhile are gathered too (they are next in order).
  NatsResult<void> fetch(std::vector<MsgPtr>& out, int batch, std::int64_t wait_ms);
  // Applies a fetched batch; acks its last message handled. An error stops bridge in.
  Result<void> process(std::vector<MsgPtr>& batch, const std::atomic<bool>& stop);
  void reply(natsMsg* msg, std::string_view what);
  void ack(natsMsg* msg);
  void housekeeping();
  // After an empty fetch: whether the consumer holds messages we are not given (delivered to a
  // fetch lost in a server restart, which come back only after AckWait, or a consumer gone). Asks
  // the server at most once per kStallCheckInterval; true on the second such answer in a row.
  bool stalled();
  Clock::time_point last_stall_check{};
  int stall_checks = 0;
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
  jsConsumerConfig cc;
  jsConsumerConfig_Init(&cc);
  cc.Durable = durable.c_str();
  cc.FilterSubject = subject.c_str();
  cc.AckPolicy = js_AckAll;
  cc.AckWait = std::chrono::duration_cast<std::chrono::nanoseconds>(options.ack_wait).count();
  cc.MaxAckPending = 4 * static_cast<std::int64_t>(options.batch);
  cc.MaxDeliver = -1;
  if (start > 1) {
    cc.DeliverPolicy = js_DeliverByStartSequence;
    cc.OptStartSeq = start;
  } else {
    cc.DeliverPolicy = js_DeliverAll;
  }
  jsConsumerInfo* raw_added = nullptr;
  jerr = static_cast<jsErrCode>(0);
  s = js_AddConsumer(&raw_added, js.get(), options.stream.c_str(), &cc, nullptr, &jerr);
  ConsumerInfoPtr added(raw_added);
  if (s != NATS_OK) return tl::unexpected(nats_error(s, jerr));
  natsInbox* raw_inbox = nullptr;
  s = natsInbox_Create(&raw_inbox);
  if (s != NATS_OK) return tl::unexpected(nats_error(s));
  inbox = raw_inbox;
  natsInbox_Destroy(raw_inbox);
  natsSubscription* raw_sub = nullptr;
  s = natsConnection_SubscribeSync(&raw_sub, connection.get(), inbox.c_str());
  if (s != NATS_OK) return tl::unexpected(nats_error(s));
  subscription.reset(raw_sub);
  next_subject = fmt::format("$JS.API.CONSUMER.MSG.NEXT.{}.{}", options.stream, durable);
  expected = 0;  // the consumer starts at the first message the stream holds from `start`
  return {};
}

void In::State::reply(natsMsg* msg, std::string_view what) {
  const char* to = natsMsg_GetReply(msg);
  if (to == nullptr) return;
  const natsStatus s = natsConnection_Publish(connection.get(), to, what.data(),
                                              static_cast<int>(what.size()));
  if (s != NATS_OK) report_once(fmt::format("acknowledging: {}", nats_error(s).describe()));
}

void In::State::ack(natsMsg* msg) {
  // AckAll: acknowledges every message up to this one, all committed locally. A lost ack only
  // means a redelivery, which the apply rules skip.
  reply(msg, "+ACK");
}

NatsResult<void> In::State::fetch(std::vector<MsgPtr>& out, int batch, std::int64_t wait_ms) {
  // The server ends the request after `expires` with a 408 status message; a little before our
  // own deadline, so that its messages are not left for the next request.
  const std::int64_t expires_ns = std::max<std::int64_t>(wait_ms - 20, 10) * 1'000'000;
  const std::string request = fmt::format(R"({{"batch":{},"expires":{}}})", batch, expires_ns);
  natsStatus s = natsConnection_PublishRequest(connection.get(), next_subject.c_str(),
                                               inbox.c_str(), request.data(),
                                               static_cast<int>(request.size()));
  if (s != NATS_OK) return tl::unexpected(nats_error(s));
  const auto deadline = Clock::now() + std::chrono::milliseconds(wait_ms);
  while (static_cast<int>(out.size()) < batch) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) break;
    natsMsg* raw = nullptr;
    s = natsSubscription_NextMsg(&raw, subscription.get(), left.count());
    if (s == NATS_TIMEOUT) break;
    if (s != NATS_OK) return tl::unexpected(nats_error(s));
    MsgPtr msg(raw);
    const char* status = nullptr;
    if (natsMsgHeader_Get(msg.get(), "Status", &status) == NATS_OK && status != nullptr) {
      // 404 no messages, 408 request expired, 409 consumer deleted or limits: this request
      // (or an earlier one) is over. What was gathered is returned.
      if (std::string_view(status) == "409") {
        return tl::unexpected(nats_error(NATS_ERR, JSConsumerNotFoundErr, "the consumer ended the pull request (409)"));
      }
      if (!out.empty()) break;
      continue;
    }
    out.push_back(std::move(msg));
  }
  return {};
}

Result<void> In::State::process(std::vector<MsgPtr>& batch, const std::atomic<bool>& stop) {
  auto& c = counters();
  natsMsg* last_done = nullptr;  // the last message handled: acknowledged (AckAll) at the end
  for (std::size_t i = 0; i < batch.size(); ++i) {
    natsMsg* m = batch[i].get();
    const auto md = parse_ack_subject(natsMsg_GetReply(m));
    if (!md) {
      if (last_done != nullptr) ack(last_done);
      return tl::unexpected(Error{ErrorCode::corrupt,
                                  fmt::format("bridge in: a fetched message without JetStream "
                                              "metadata (reply subject '{}')",
                                              natsMsg_GetReply(m) ? natsMsg_GetReply(m) : "")});
    }
    const std::uint64_t seq = md->stream_seq;
    if (expected != 0 && seq > expected) {
      // Out of order: expected .. seq - 1 went to a fetch we never saw. Start over right after
      // what was handled; nothing after it is acknowledged.
      if (last_done != nullptr) ack(last_done);
      report(fmt::format("stream sequence {} arrived while {} was expected: restarting the "
                         "consumer at {}",
                         seq, expected, expected));
      c.recoveries.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic
      // Not here: the batch's messages belong to the subscription, so run() re-creates it once
      // the batch is destroyed.
      restart_at = expected;
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
        for (auto& each : batch) reply(each.get(), "+WPI");
        since = Clock::now();
      }
      segment->heartbeat();
    }
    if (holding) set_state(BridgeState::running);
    last_done = m;
    c.lag_records.store(md->pending, std::memory_order_relaxed);  // relaxed: a statistic
    const std::int64_t behind = md->pending == 0 ? 0 : realtime_ns() - h.time_ns;
    const auto lag_ns = static_cast<std::uint64_t>(std::max<std::int64_t>(0, behind));
    c.lag_ns.store(lag_ns, std::memory_order_relaxed);  // relaxed: a statistic
  }
  if (last_done != nullptr) ack(last_done);
  return {};
}

bool In::State::stalled() {
  const auto now = Clock::now();
  if (now - last_stall_check < kStallCheckInterval) return false;
  last_stall_check = now;
  jsConsumerInfo* raw = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  const natsStatus s = js_GetConsumerInfo(&raw, js.get(), options.stream.c_str(), durable.c_str(),
                                          nullptr, &jerr);
  ConsumerInfoPtr ci(raw);
  if (s != NATS_OK || !ci) {
    stall_checks = 0;
    return jerr == JSConsumerNotFoundErr;  // deleted (with its stream, or by hand): subscribe again
  }
  // We acknowledge every batch before the next fetch, so while our fetches come back empty the
  // consumer should have nothing pending for us and nothing unacknowledged.
  if (ci->NumPending == 0 && ci->NumAckPending == 0) {
    stall_checks = 0;
    return false;
  }
  return ++stall_checks >= 2;
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
    std::vector<MsgPtr> batch;
    batch.reserve(s.options.batch);
    const auto fetched = s.fetch(batch, static_cast<int>(s.options.batch), kFetchWaitMs);
    const natsStatus st = fetched ? NATS_OK : fetched.error().status;
    const jsErrCode jerr = fetched ? static_cast<jsErrCode>(0) : fetched.error().js_code;
    if (st == NATS_OK && batch.empty()) {
      failed_fetches = 0;
      s.housekeeping();
      if (s.stalled()) {
        s.report("the consumer holds messages no fetch returns (delivered to a fetch lost in a "
                 "server restart?): re-creating it after the applied position");
        s.counters().recoveries.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic
        batch.clear();
        s.subscription.reset();
        s.stall_checks = 0;
      }
      continue;
    }
    if (st != NATS_OK) {
      const NatsError e = nats_error(st, jerr);
      s.set_state(BridgeState::recovering, e.describe());
      s.report_once(fmt::format("fetching: {}", e.describe()));
      if (++failed_fetches >= kErrorsBeforeResubscribe || jerr == JSConsumerNotFoundErr) {
        batch.clear();
        s.subscription.reset();  // the consumer (or the stream) may be gone: subscribe again
        failed_fetches = 0;
      }
      sleep_unless_stopped(stop, kRetryPause);
      continue;
    }
    if (failed_fetches != 0) s.set_state(BridgeState::running);
    failed_fetches = 0;
    auto processed = s.process(batch, stop);
    batch.clear();  // before the subscription may be destroyed (State::restart_at)
    if (!processed) {
      s.set_state(BridgeState::stopped, processed.error().message);
      return processed;
    }
    if (s.restart_at != 0) {
      const std::uint64_t at = std::exchange(s.restart_at, 0);
      if (auto r = s.subscribe(at); !r) {
        s.report(fmt::format("re-creating the consumer: {}", r.error().describe()));
        s.subscription.reset();  // the loop subscribes again
      }
    }
  }
  s.set_state(BridgeState::stopped);
  return {};
}

}  // namespace shmbus::bridge
