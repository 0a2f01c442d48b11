// Sending a record the group gave up on to its dead-letter channel. The member holds the record
// (a lease of its own) while it publishes, so no other member sends it too; only after the dead
// letter is committed is the entry retired as dead_lettered. A member that dies in between has its
// lease taken back and the record is sent again by another: the dead-letter channel gets every
// such record at least once (docs/groups.md).
#include <fmt/format.h>

#include "ipc/group_state.hpp"
#include "ipc/group_words.hpp"
#include "shmbus/dead_letter.hpp"

namespace shmbus::detail {

namespace {

DeadLetterReason dead_letter_reason(std::uint16_t orphan_reason) {
  switch (static_cast<OrphanReason>(orphan_reason)) {
    case OrphanReason::nacked: return DeadLetterReason::rejected;
    case OrphanReason::ack_timeout: return DeadLetterReason::ack_timeout;
    case OrphanReason::member_died:
    case OrphanReason::member_left: return DeadLetterReason::member_died;
    case OrphanReason::none: break;
  }
  return DeadLetterReason::unreadable;
}

}  // namespace

bool GroupState::dead_letter(std::uint64_t sequence, std::uint64_t lease, std::uint64_t position,
                             std::uint32_t attempts, std::uint16_t reason_code,
                             std::string_view reason) {
  GroupEntry& e = entry(sequence);
  auto give_back = [&](const std::string& why) {
    // Keep it for a later try: back to orphaned, attempts unchanged.
    last_error = why;
    GroupPair expected{sequence, lease};
    const Lease l = unpack_lease(lease);
    const Lease back{EntryState::orphaned, static_cast<OrphanReason>(reason_code & 7), index,
                     l.attempts, token};
    if (cas_pair(e.word, expected, GroupPair{sequence, pack_lease(back)})) {
      header->orphaned.fetch_add(1, std::memory_order_relaxed);  // relaxed: a hint
    }
    return false;
  };
  if (!dead_letters) {
    ChannelOptions dlq;
    dlq.accept_existing = true;
    auto pub = Publisher::open(settings.dead_letter_channel, dlq);
    if (!pub) {
      return give_back(fmt::format("group '{}': cannot open the dead-letter channel '{}': {}",
                                   group_name, settings.dead_letter_channel,
                                   pub.error().message));
    }
    dead_letters.emplace(std::move(*pub));
  }
  const std::optional<core::RecordView> view = read_record(position, sequence);
  DeadLetter letter;
  letter.original_sequence = sequence;
  letter.dead_lettered_ns = realtime_ns();
  letter.attempts = attempts;
  letter.reason_code = view ? dead_letter_reason(reason_code) : DeadLetterReason::unreadable;
  letter.channel = channel_name;
  letter.group = group_name;
  letter.reason = reason;
  if (view) {
    letter.original_timestamp_ns = view->timestamp_ns;
    letter.payload = {view->payload, view->length};
    if (view->key != nullptr) letter.key = {view->key, view->key_length};
    letter.message_type = view->message_type;
  }
  const std::size_t size = encoded_size(letter);
  Claim claim;
  const PublishStatus claimed =
      size == 0 || size > dead_letters->info().max_message
          ? PublishStatus::too_large
          : dead_letters->claim(static_cast<std::uint32_t>(size), claim, std::chrono::seconds(1));
  if (claimed != PublishStatus::ok) {
    return give_back(fmt::format("group '{}': cannot publish sequence {} to the dead-letter "
                                 "channel '{}': {}",
                                 group_name, sequence, settings.dead_letter_channel,
                                 to_string(claimed)));
  }
  encode(letter, claim.span());
  if (const PublishStatus committed = dead_letters->commit(claim);
      committed != PublishStatus::ok) {
    return give_back(fmt::format("group '{}': the dead letter of sequence {} was not committed: {}",
                                 group_name, sequence, to_string(committed)));
  }
  GroupPair expected{sequence, lease};
  const Lease l = unpack_lease(lease);
  const Lease done{EntryState::dead_lettered, OrphanReason::none, index, l.attempts, token};
  if (!cas_pair(e.word, expected, GroupPair{sequence, pack_lease(done)})) {
    // Taken back while we published (we stalled past the timeout): the next holder sends it
    // again or acks it; the dead-letter channel may hold it twice.
    ++fenced;
    header->fenced.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic
    return false;
  }
  header->dead_lettered.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic
  if (load_cursor(header->floor).second == sequence) advance_floor();
  return true;
}

}  // namespace shmbus::detail
