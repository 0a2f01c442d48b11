// Publishing from C: open a publisher, claim / commit / abort in place, or publish a copy.
//
// Hot path: shmbus_claim, shmbus_commit, shmbus_abort and shmbus_publish call the C++ Publisher's
// noexcept calls, which allocate nothing, take no lock and make no system call; the C layer adds
// none either. The Claim lives inside the caller's shmbus_claim_ticket (copied in and out, no heap), and
// a failure's message is a static string stored by pointer (set_static_error): no allocation
// (tests/capi/capi_hot_path_test.cpp counts allocations and traces system calls).
#include <chrono>
#include <cstring>
#include <new>
#include <span>
#include <type_traits>
#include <utility>

#include "capi/errors.hpp"
#include "capi/handles.hpp"

namespace shmbus::capi {
namespace {

static_assert(sizeof(Claim) <= sizeof(shmbus_claim_ticket::internal),
              "shmbus_claim_ticket::internal must hold a Claim");
static_assert(std::is_trivially_copyable_v<Claim>, "a Claim is copied in and out of shmbus_claim_ticket");

ChannelOptions to_channel_options(const shmbus_channel_options& in) {
  ChannelOptions o;
  o.capacity = in.capacity;
  o.max_message = in.max_message;
  o.mode = in.mode;
  o.open_timeout = std::chrono::milliseconds(in.open_timeout_ms);
  o.single_producer = in.single_producer != 0;
  o.counters = in.counters != 0;
  o.subscriber_slots = in.subscriber_slots;
  o.producer_slots = in.producer_slots;
  if (in.gating_group >= 0) o.gating_group = static_cast<std::uint32_t>(in.gating_group);
  o.accept_existing = in.accept_existing != 0;
  return o;
}

RecordTag to_tag(const shmbus_tag& tag) noexcept {
  return RecordTag{{static_cast<const std::byte*>(tag.key), tag.key == nullptr ? 0 : tag.key_length},
                   tag.message_type};
}

// A status other than ok as a negative errno, with a static message (no allocation).
int status_error(PublishStatus status) noexcept {
  switch (status) {
    case PublishStatus::ok:
      return 0;
    case PublishStatus::back_pressured:
      set_static_error("back-pressured: a block subscriber has not freed the space; nothing was "
                       "claimed");
      return -EAGAIN;
    case PublishStatus::too_large:
      set_static_error("too large: the record (key included) is above the channel's "
                       "max_message, or the key is longer than 256 bytes; nothing was claimed");
      return -EMSGSIZE;
    case PublishStatus::timed_out:
      set_static_error("timed out: still back-pressured when the timeout passed; nothing was "
                       "claimed");
      return -ETIMEDOUT;
    case PublishStatus::abandoned:
      set_static_error("abandoned: the claim was held past the abandon timeout and a peer marked "
                       "it abandoned; its sequence is lost");
      return -ECANCELED;
    case PublishStatus::corrupt:
      set_static_error("corrupt: the channel's claim word holds a value no shmbus producer "
                       "writes (a peer wrote into the ring)");
      return -EBADMSG;
  }
  set_static_error("unknown publish status");
  return -EIO;
}

int null_argument(const char* text) noexcept {
  set_static_error(text);
  return -EINVAL;
}

// A ticket done with holds a default Claim (whose data() is null, unlike any live claim's), so
// that a second commit or abort of it is refused rather than rewriting a record that is
// published already and unbalancing the producer's count of open claims. The fields the caller
// reads (sequence above all) stay as they were after a commit or abort.
void retire_ticket(shmbus_claim_ticket& ticket) noexcept {
  const Claim none;
  std::memcpy(ticket.internal, &none, sizeof none);
}

// A failed claim leaves the ticket empty, nothing in it to write to or commit.
void clear_ticket(shmbus_claim_ticket& ticket) noexcept {
  ticket.data = nullptr;
  ticket.size = 0;
  ticket.sequence = 0;
  retire_ticket(ticket);
}

}  // namespace
}  // namespace shmbus::capi

using shmbus::capi::clear_ticket;
using shmbus::capi::retire_ticket;
using shmbus::capi::null_argument;
using shmbus::capi::status_error;

extern "C" {

int shmbus_publisher_open(const char* channel, const shmbus_channel_options* options,
                          shmbus_publisher** out) {
  return shmbus::capi::guarded([&]() -> int {
    if (channel == nullptr || out == nullptr) {
      return null_argument("shmbus_publisher_open: channel and out must not be NULL");
    }
    *out = nullptr;
    auto pub = options == nullptr
                   ? shmbus::Publisher::open(channel)
                   : shmbus::Publisher::open(channel, shmbus::capi::to_channel_options(*options));
    if (!pub) return shmbus::capi::fail(pub.error());
    *out = new shmbus_publisher{std::move(*pub)};
    return 0;
  });
}

void shmbus_publisher_close(shmbus_publisher* publisher) { delete publisher; }

int shmbus_publisher_info(const shmbus_publisher* publisher, shmbus_channel_info* out) {
  if (publisher == nullptr || out == nullptr) {
    return null_argument("shmbus_publisher_info: publisher and out must not be NULL");
  }
  shmbus::capi::copy_info(publisher->publisher.info(), *out);
  return 0;
}

int shmbus_claim(shmbus_publisher* publisher, uint32_t size, const shmbus_tag* tag,
                 int64_t timeout_ns, shmbus_claim_ticket* claim) {
  if (publisher == nullptr || claim == nullptr) {
    return null_argument("shmbus_claim: publisher and claim must not be NULL");
  }
  shmbus::Publisher& pub = publisher->publisher;
  shmbus::Claim c;
  shmbus::PublishStatus status;
  if (timeout_ns <= 0) {
    status = tag == nullptr ? pub.try_claim(size, c)
                            : pub.try_claim(size, c, shmbus::capi::to_tag(*tag));
  } else {
    const std::chrono::nanoseconds timeout(timeout_ns);
    status = tag == nullptr ? pub.claim(size, c, timeout)
                            : pub.claim(size, c, shmbus::capi::to_tag(*tag), timeout);
  }
  if (status != shmbus::PublishStatus::ok) {
    clear_ticket(*claim);  // a failed claim leaves nothing to commit or abort
    return status_error(status);
  }
  claim->data = c.data();
  claim->size = c.size();
  claim->sequence = c.sequence();
  std::memcpy(claim->internal, &c, sizeof c);
  return 0;
}

int shmbus_commit(shmbus_publisher* publisher, shmbus_claim_ticket* claim) {
  if (publisher == nullptr || claim == nullptr) {
    return null_argument("shmbus_commit: publisher and claim must not be NULL");
  }
  shmbus::Claim c;
  std::memcpy(&c, claim->internal, sizeof c);
  if (c.data() == nullptr) {
    return null_argument("shmbus_commit: the ticket holds no claim (it failed, or was committed "
                         "or aborted already)");
  }
  retire_ticket(*claim);
  return status_error(publisher->publisher.commit(c));
}

void shmbus_abort(shmbus_publisher* publisher, shmbus_claim_ticket* claim) {
  if (publisher == nullptr || claim == nullptr) return;
  shmbus::Claim c;
  std::memcpy(&c, claim->internal, sizeof c);
  if (c.data() == nullptr) return;  // nothing claimed, or done with already
  retire_ticket(*claim);
  publisher->publisher.abandon(c);
}

int shmbus_publish(shmbus_publisher* publisher, const void* payload, uint32_t size,
                   const shmbus_tag* tag, int64_t timeout_ns) {
  if (publisher == nullptr || (payload == nullptr && size != 0)) {
    return null_argument("shmbus_publish: publisher (and payload, when size > 0) must not be NULL");
  }
  shmbus::Publisher& pub = publisher->publisher;
  const std::span<const std::byte> bytes(static_cast<const std::byte*>(payload), size);
  shmbus::PublishStatus status;
  if (timeout_ns <= 0) {
    status = tag == nullptr ? pub.try_publish(bytes)
                            : pub.try_publish(bytes, shmbus::capi::to_tag(*tag));
  } else {
    const std::chrono::nanoseconds timeout(timeout_ns);
    status = tag == nullptr ? pub.publish(bytes, timeout)
                            : pub.publish(bytes, shmbus::capi::to_tag(*tag), timeout);
  }
  return status_error(status);
}

}  // extern "C"
