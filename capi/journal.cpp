// Reading a journal directory from C: open, seek by sequence or time, next record, close.
#include <utility>

#include "capi/errors.hpp"
#include "capi/handles.hpp"

namespace {

int null_reader(const char* function) noexcept {
  shmbus::capi::set_error(function, ": reader must not be NULL");
  return -EINVAL;
}

}  // namespace

extern "C" {

int shmbus_journal_open(const char* dir, shmbus_journal_reader** out) {
  return shmbus::capi::guarded([&]() -> int {
    if (dir == nullptr || out == nullptr) {
      return shmbus::capi::fail(EINVAL, "shmbus_journal_open: dir and out must not be NULL");
    }
    *out = nullptr;
    auto reader = shmbus::journal::JournalReader::open(dir);
    if (!reader) return shmbus::capi::fail(reader.error());
    *out = new shmbus_journal_reader{std::move(*reader)};
    return 0;
  });
}

void shmbus_journal_close(shmbus_journal_reader* reader) { delete reader; }

uint64_t shmbus_journal_first_sequence(const shmbus_journal_reader* reader) {
  return reader == nullptr ? 0 : reader->reader.first_sequence();
}

int shmbus_journal_seek_sequence(shmbus_journal_reader* reader, uint64_t sequence) {
  if (reader == nullptr) return null_reader("shmbus_journal_seek_sequence");
  return shmbus::capi::guarded([&]() -> int {
    auto sought = reader->reader.seek_sequence(sequence);
    return sought ? 0 : shmbus::capi::fail(sought.error());
  });
}

int shmbus_journal_seek_time(shmbus_journal_reader* reader, int64_t time_ns) {
  if (reader == nullptr) return null_reader("shmbus_journal_seek_time");
  return shmbus::capi::guarded([&]() -> int {
    auto sought = reader->reader.seek_time(time_ns);
    return sought ? 0 : shmbus::capi::fail(sought.error());
  });
}

int shmbus_journal_next(shmbus_journal_reader* reader, shmbus_journal_record* out) {
  if (reader == nullptr || out == nullptr) {
    return shmbus::capi::fail(EINVAL, "shmbus_journal_next: reader and out must not be NULL");
  }
  return shmbus::capi::guarded([&]() -> int {
    shmbus::journal::JournalRecord r{};
    switch (reader->reader.next(r)) {
      case shmbus::journal::ReadStatus::end:
        return 0;
      case shmbus::journal::ReadStatus::damaged:
        // The reader reports a read error (EIO) as damage too; its message carries the system's
        // text.
        return shmbus::capi::fail(EBADMSG, reader->reader.last_error());
      case shmbus::journal::ReadStatus::record:
        break;
    }
    out->type = r.type == shmbus::journal::RecordType::gap ? SHMBUS_JOURNAL_GAP
                                                            : SHMBUS_JOURNAL_DATA;
    out->sequence = r.sequence;
    out->timestamp_ns = r.timestamp_ns;
    out->payload = r.payload.data();
    out->length = static_cast<std::uint32_t>(r.payload.size());
    out->key_length = static_cast<std::uint16_t>(r.key.size());
    out->message_type = r.message_type;
    out->key = r.key.data();
    out->gap_count = r.gap_count;
    out->offset = r.offset;
    out->segment = static_cast<std::uint32_t>(r.segment);
    return 1;
  });
}

int shmbus_journal_skip_damage(shmbus_journal_reader* reader) {
  if (reader == nullptr) return null_reader("shmbus_journal_skip_damage");
  return shmbus::capi::guarded([&]() -> int { return reader->reader.skip_damage() ? 1 : 0; });
}

int shmbus_journal_refresh(shmbus_journal_reader* reader) {
  if (reader == nullptr) return null_reader("shmbus_journal_refresh");
  return shmbus::capi::guarded([&]() -> int {
    auto refreshed = reader->reader.refresh();
    return refreshed ? 0 : shmbus::capi::fail(refreshed.error());
  });
}

}  // extern "C"
