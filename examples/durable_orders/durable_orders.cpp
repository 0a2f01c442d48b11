// An order log that survives a power loss: every order is published on a channel whose journaler
// fdatasyncs its files after each batch of writes (FsyncPolicy::batch), and the publisher
// acknowledges an order (to its client, say) only once Publisher::wait_durable says the order's
// sequence is on disk. The journaler runs on a thread of this process here; `shmbus record
// --fsync batch` as a process of its own does the same.
//
// It prints the durable-wait latency (publish -> durable) and then, with the journaler stopped,
// reads the journal back with JournalReader and checks that every acknowledged order is there, on
// its sequence, byte for byte.
#include "example_support.hpp"

#include <shmbus/journal_reader.hpp>
#include <shmbus/journaler.hpp>

#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <thread>
#include <type_traits>
#include <vector>

namespace {

constexpr const char* kUsage =
    "usage: durable_orders --journal DIR [--orders 1000] [--batch 1] [--idle-nap-us 200]\n"
    "Publishes --orders orders, acknowledging each --batch once it is durable in DIR (new or\n"
    "empty).\n";

struct OrderEntry {
  std::uint64_t order_id;  // 1, 2, 3, ...
  std::uint32_t instrument_id;
  std::int32_t quantity;   // signed: buy > 0, sell < 0
  std::int64_t limit_price;  // ticks
  std::int64_t client_ns;    // when the client sent it (CLOCK_REALTIME)
};
static_assert(std::is_trivially_copyable_v<OrderEntry> && sizeof(OrderEntry) == 32);

// What was acknowledged: the channel sequence the order went out on, and the order.
struct Acknowledged {
  std::uint64_t sequence;
  OrderEntry order;
};

struct ReadBack {
  std::uint64_t found = 0;     // acknowledged orders found on their sequence with their content
  std::uint64_t records = 0;   // data records in the journal
  std::uint64_t gap_records = 0;
};

// Reads the journal and matches the acknowledged orders, in sequence order, against its records.
shmbus::Result<ReadBack> read_back(const std::string& dir,
                                   const std::vector<Acknowledged>& acknowledged) {
  auto reader = shmbus::journal::JournalReader::open(dir);
  if (!reader) return tl::unexpected(reader.error());
  ReadBack result;
  auto next_ack = acknowledged.begin();
  shmbus::journal::JournalRecord record;
  shmbus::journal::ReadStatus status;
  while ((status = reader->next(record)) == shmbus::journal::ReadStatus::record) {
    if (record.type == shmbus::journal::RecordType::gap) {
      ++result.gap_records;
      continue;
    }
    ++result.records;
    while (next_ack != acknowledged.end() && next_ack->sequence < record.sequence) ++next_ack;
    if (next_ack == acknowledged.end() || next_ack->sequence != record.sequence) continue;
    if (record.payload.size() == sizeof(OrderEntry) &&
        std::memcmp(record.payload.data(), &next_ack->order, sizeof(OrderEntry)) == 0) {
      ++result.found;
    }
    ++next_ack;
  }
  if (status == shmbus::journal::ReadStatus::damaged) {
    return tl::unexpected(shmbus::Error{shmbus::ErrorCode::corrupt, reader->last_error()});
  }
  return result;
}

}  // namespace

int main(int argc, char** argv) {
  const examples::Options args(argc, argv, kUsage);
  const std::string journal_dir = args.required_text("journal");
  const std::uint64_t orders = args.number("orders", 1000);
  const std::uint64_t batch = args.number("batch", 1);
  if (batch == 0 || batch > shmbus::Publisher::kMaxBatch) args.fail("--batch must be 1 to 64");
  examples::stop_on_signals();

  // A journal already holding records belongs to another run's channel: start a new one.
  if (auto segments = shmbus::journal::list_segments(journal_dir); segments && !segments->empty()) {
    fmt::print(stderr, "durable orders: {} already holds a journal; give a new directory\n",
               journal_dir);
    return 2;
  }
  const std::string channel = fmt::format("orders.durable.{}", ::getpid());
  shmbus::ChannelOptions channel_options;
  channel_options.capacity = 1 << 20;
  channel_options.max_message = 256;
  channel_options.single_producer = true;
  auto publisher = shmbus::Publisher::open(channel, channel_options);
  if (!publisher) {
    fmt::print(stderr, "durable orders: {}\n", publisher.error().message);
    return 1;
  }

  shmbus::JournalerOptions journal_options;
  journal_options.channel = channel;
  journal_options.writer.dir = journal_dir;
  journal_options.writer.fsync = shmbus::journal::FsyncPolicy::batch;  // fdatasync every flush
  journal_options.name = "order-log";
  // A durable wait lasts at least until the journaler notices the order: its nap when idle, and
  // how long it lets a partly filled buffer wait, bound it (the defaults, 1 ms each, suit a
  // recorder that nobody waits for). Shorter naps cost wake-ups on a core the publisher may need.
  const auto idle_nap = std::chrono::microseconds(args.number("idle-nap-us", 200));
  journal_options.idle_nap = idle_nap;
  journal_options.flush_interval = idle_nap;
  auto journaler = shmbus::Journaler::open(journal_options);
  if (!journaler) {
    fmt::print(stderr, "durable orders: {}\n", journaler.error().message);
    return 1;
  }
  // Tells the journaler's thread to stop. Relaxed would do for the flag itself; run() reads it
  // with its own ordering, and everything the thread shares with main is handed over by join().
  std::atomic<bool> stop_journaler{false};
  shmbus::Result<void> journaler_result;
  std::thread journaler_thread([&] { journaler_result = journaler->run(stop_journaler); });

  std::vector<Acknowledged> acknowledged;
  acknowledged.reserve(orders);
  std::vector<std::int64_t> durable_waits;
  std::vector<Acknowledged> pending;  // published, not yet durable
  bool failed = false;
  const std::int64_t start_ns = examples::monotonic_ns();
  for (std::uint64_t id = 1; id <= orders && !failed && !examples::stopping(); ++id) {
    const OrderEntry order{id, static_cast<std::uint32_t>(1 + id % 4),
                           (id % 2 == 0 ? 1 : -1) * static_cast<std::int32_t>(100 * (1 + id % 5)),
                           1'000'000 + static_cast<std::int64_t>(id % 7), examples::realtime_ns()};
    shmbus::Claim claim;
    if (publisher->claim(sizeof order, claim, std::chrono::seconds(5)) != shmbus::PublishStatus::ok) {
      fmt::print(stderr, "durable orders: order {} could not be claimed\n", id);
      failed = true;
      break;
    }
    std::memcpy(claim.data(), &order, sizeof order);
    if (publisher->commit(claim) != shmbus::PublishStatus::ok) {
      fmt::print(stderr, "durable orders: order {} could not be committed\n", id);
      failed = true;
      break;
    }
    pending.push_back({claim.sequence(), order});
    if (pending.size() < batch && id < orders) continue;
    // The batch's last sequence durable means all of it is: the journal is written in order.
    const std::int64_t wait_start_ns = examples::monotonic_ns();
    if (!publisher->wait_durable(pending.back().sequence, std::chrono::seconds(5))) {
      fmt::print(stderr, "durable orders: sequence {} did not become durable within 5 s\n",
                 pending.back().sequence);
      failed = true;
      break;
    }
    durable_waits.push_back(examples::monotonic_ns() - wait_start_ns);
    acknowledged.insert(acknowledged.end(), pending.begin(), pending.end());  // "ack" them now
    pending.clear();
  }
  const std::int64_t elapsed_ns = examples::monotonic_ns() - start_ns;
  // Relaxed: only the flag is handed over; join() orders everything after.
  stop_journaler.store(true, std::memory_order_relaxed);
  journaler_thread.join();
  const shmbus::JournalerStats stats = journaler->stats();
  if (!journaler_result) {
    fmt::print(stderr, "durable orders: the journaler failed: {}\n", journaler_result.error().message);
    failed = true;
  }
  (void)shmbus::remove_channel(channel);

  fmt::print("durable orders: acknowledged {} of {} orders, {} per durable wait, in {:.3f} s "
             "({:.0f} orders/s)\n",
             acknowledged.size(), orders, batch, static_cast<double>(elapsed_ns) / 1e9,
             static_cast<double>(acknowledged.size()) * 1e9 /
                 static_cast<double>(std::max<std::int64_t>(elapsed_ns, 1)));
  fmt::print("durable orders: publish -> durable (fdatasync'ed): {}\n",
             examples::describe(examples::summarize(std::move(durable_waits))));
  fmt::print("durable orders: journaler (fsync batch, idle nap {} us): {} records written, durable "
             "up to sequence {}\n",
             idle_nap.count(), stats.recorded, stats.durable_sequence);

  auto result = read_back(journal_dir, acknowledged);
  if (!result) {
    fmt::print(stderr, "durable orders: reading the journal back: {}\n", result.error().message);
    return 1;
  }
  const bool every_ack_found = result->found == acknowledged.size();
  fmt::print("durable orders: read back {} records, {} gap records; every acknowledged order is "
             "in the journal, on its sequence, byte for byte: {} ({} of {})\n",
             result->records, result->gap_records, every_ack_found ? "yes" : "no", result->found,
             acknowledged.size());
  return failed || !every_ack_found || acknowledged.size() != orders ? 1 : 0;
}
