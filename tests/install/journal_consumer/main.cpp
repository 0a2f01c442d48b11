// Records a channel with shmbus::Journaler on a thread of its own, publishes 500 records, waits
// until the journal holds them on disk, then reads them back with JournalReader and checks each by
// sequence and content. Exits 0 when the journal holds every record once, in order, intact; prints
// why and exits 1 otherwise. Built against an installed shmbus only (tests/install).
#include <shmbus/journal_reader.hpp>
#include <shmbus/journaler.hpp>
#include <shmbus/version.hpp>

#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>

namespace {

constexpr std::uint64_t kRecords = 500;

std::string payload_of(std::uint64_t index) { return "record " + std::to_string(index); }

// Publishes kRecords records; returns the sequence of the first (0 on failure).
std::uint64_t publish_all(shmbus::Publisher& pub) {
  std::uint64_t first_sequence = 0;
  for (std::uint64_t index = 0; index < kRecords; ++index) {
    const std::string text = payload_of(index);
    shmbus::Claim claim;
    // The journaler gates the producer: wait for it to write what fills the ring.
    if (pub.claim(static_cast<std::uint32_t>(text.size()), claim, std::chrono::seconds(10)) !=
        shmbus::PublishStatus::ok) {
      std::fprintf(stderr, "claim of record %llu failed\n", static_cast<unsigned long long>(index));
      return 0;
    }
    std::memcpy(claim.data(), text.data(), text.size());
    if (index == 0) first_sequence = claim.sequence();
    if (pub.commit(claim) != shmbus::PublishStatus::ok) return 0;
  }
  return first_sequence;
}

// Reads the journal from its first record; true when it holds exactly the published records.
bool journal_holds_all(const std::string& dir, std::uint64_t first_sequence) {
  auto reader = shmbus::journal::JournalReader::open(dir);
  if (!reader) {
    std::fprintf(stderr, "reader: %s\n", reader.error().message.c_str());
    return false;
  }
  std::uint64_t index = 0;
  shmbus::journal::JournalRecord record;
  for (;;) {
    const shmbus::journal::ReadStatus status = reader->next(record);
    if (status == shmbus::journal::ReadStatus::end) break;
    if (status == shmbus::journal::ReadStatus::damaged) {
      std::fprintf(stderr, "damaged journal: %s\n", reader->last_error().c_str());
      return false;
    }
    const std::string expected = payload_of(index);
    const bool same = record.type == shmbus::journal::RecordType::data &&
                      record.sequence == first_sequence + index &&
                      record.payload.size() == expected.size() &&
                      std::memcmp(record.payload.data(), expected.data(), expected.size()) == 0;
    if (!same) {
      std::fprintf(stderr, "record %llu differs (sequence %llu)\n",
                   static_cast<unsigned long long>(index),
                   static_cast<unsigned long long>(record.sequence));
      return false;
    }
    ++index;
  }
  if (index != kRecords) {
    std::fprintf(stderr, "the journal holds %llu of %llu records\n",
                 static_cast<unsigned long long>(index), static_cast<unsigned long long>(kRecords));
    return false;
  }
  return true;
}

}  // namespace

int main() {
  char dir_template[] = "/tmp/shmbus-journal-consumer.XXXXXX";
  if (::mkdtemp(dir_template) == nullptr) return 1;
  const std::string dir = dir_template;
  const std::string channel = "install.journal." + std::to_string(::getpid());

  shmbus::ChannelOptions channel_options;
  channel_options.capacity = 1 << 14;
  channel_options.max_message = 256;
  auto pub = shmbus::Publisher::open(channel, channel_options);
  if (!pub) {
    std::fprintf(stderr, "publisher: %s\n", pub.error().message.c_str());
    return 1;
  }
  shmbus::JournalerOptions journaler_options;
  journaler_options.channel = channel;
  journaler_options.writer.dir = dir;
  journaler_options.writer.fsync = shmbus::journal::FsyncPolicy::batch;
  auto journaler = shmbus::Journaler::open(journaler_options);
  if (!journaler) {
    std::fprintf(stderr, "journaler: %s\n", journaler.error().message.c_str());
    return 1;
  }
  // Only tells run() to end its loop; join() orders everything the thread did before the read.
  std::atomic<bool> stop{false};
  std::thread recorder([&] { (void)journaler->run(stop); });

  const std::uint64_t first_sequence = publish_all(*pub);
  const std::uint64_t last_sequence = first_sequence + kRecords - 1;
  const bool durable =
      first_sequence != 0 && pub->wait_durable(last_sequence, std::chrono::seconds(10));
  // Relaxed: only the flag is handed over; join() orders everything after.
  stop.store(true, std::memory_order_relaxed);
  recorder.join();

  const bool intact = durable && journal_holds_all(dir, first_sequence);
  (void)shmbus::remove_channel(channel);
  std::filesystem::remove_all(dir);
  if (!intact) {
    if (!durable) std::fprintf(stderr, "the journal did not make the records durable\n");
    return 1;
  }
  std::printf("shmbus %s: %llu records journaled and read back intact, in order\n",
              shmbus::kVersionString, static_cast<unsigned long long>(kRecords));
  return 0;
}
