/* Every function of the C API (include/shmbus/shmbus.h), from a program compiled as C: records
 * published one way come back, by sequence and content, through both poll variants; a drop
 * subscriber that is lapped counts its gap by sequence; a journal written through the C journaler
 * is read back byte for byte and sought by sequence and by time; bad input gives a negative errno
 * and a message naming what is wrong.
 *
 * Usage: capi_functions_test CASE (ctest runs each case as its own test; no argument runs all). */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "shmbus/shmbus.h"
#include "tests/capi/capi_payload.h"

#define CHECK(cond, ...)                                                                  \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                     \
      fprintf(stderr, __VA_ARGS__);                                                       \
      fprintf(stderr, " (shmbus_last_error: %s)\n", shmbus_last_error());                 \
      exit(1);                                                                            \
    }                                                                                     \
  } while (0)

/* A channel name of this process: "capi.<what>.<pid>". */
static const char* channel_name(const char* what) {
  static char names[8][64];
  static int next = 0;
  char* name = names[next++ % 8];
  snprintf(name, 64, "capi.%s.%ld", what, (long)getpid());
  (void)shmbus_channel_remove(name);
  return name;
}

static shmbus_publisher* open_publisher(const char* channel, uint64_t capacity,
                                        uint32_t max_message) {
  shmbus_channel_options options;
  shmbus_channel_options_init(&options);
  options.capacity = capacity;
  options.max_message = max_message;
  shmbus_publisher* publisher = NULL;
  const int rc = shmbus_publisher_open(channel, &options, &publisher);
  CHECK(rc == 0 && publisher != NULL, "opening the publisher of %s: %d", channel, rc);
  return publisher;
}

static shmbus_subscriber* open_subscriber(const char* channel, int policy, const char* name) {
  shmbus_subscriber_options options;
  shmbus_subscriber_options_init(&options);
  options.policy = policy;
  options.start = SHMBUS_START_EARLIEST;
  options.name = name;
  shmbus_subscriber* subscriber = NULL;
  const int rc = shmbus_subscriber_open(channel, &options, &subscriber);
  CHECK(rc == 0 && subscriber != NULL, "opening a subscriber of %s: %d", channel, rc);
  return subscriber;
}

/* Publishes record `sequence` (capi_payload.h), in place (claim, write, commit) or by copy. */
static void publish_record(shmbus_publisher* publisher, uint64_t sequence, int in_place) {
  char key[8];
  shmbus_tag tag = {NULL, 0, 0};
  const shmbus_tag* tagp = NULL;
  if (capi_is_tagged(sequence)) {
    tag.key = key;
    tag.key_length = capi_key(sequence, key);
    tag.message_type = capi_message_type(sequence);
    tagp = &tag;
  }
  const uint32_t length = capi_payload_length(sequence);
  if (in_place) {
    shmbus_claim_ticket claim;
    int rc = shmbus_claim(publisher, length, tagp, 2000000000, &claim);
    CHECK(rc == 0, "claim of %llu: %d", (unsigned long long)sequence, rc);
    CHECK(claim.sequence == sequence, "claimed sequence %llu, expected %llu",
          (unsigned long long)claim.sequence, (unsigned long long)sequence);
    CHECK(claim.size == length, "claim size %u", claim.size);
    capi_payload_fill(sequence, claim.data);
    rc = shmbus_commit(publisher, &claim);
    CHECK(rc == 0, "commit of %llu: %d", (unsigned long long)sequence, rc);
  } else {
    uint8_t payload[64];
    capi_payload_fill(sequence, payload);
    const int rc = shmbus_publish(publisher, payload, length, tagp, 2000000000);
    CHECK(rc == 0, "publish of %llu: %d", (unsigned long long)sequence, rc);
  }
}

/* What a callback subscriber has checked so far. */
struct received {
  uint64_t next;      /* the sequence expected next */
  uint64_t count;
  uint64_t lost;      /* sum of lost_before */
  int64_t* timestamps; /* by sequence, when not NULL */
};

static void check_message(const shmbus_message* m, void* context) {
  struct received* r = (struct received*)context;
  CHECK(m->sequence == r->next + m->lost_before, "callback got sequence %llu, expected %llu + %llu",
        (unsigned long long)m->sequence, (unsigned long long)r->next,
        (unsigned long long)m->lost_before);
  CHECK(capi_payload_matches(m->sequence, m->payload, m->length), "payload of %llu (length %u)",
        (unsigned long long)m->sequence, m->length);
  CHECK(capi_tag_matches(m->sequence, m->key, m->key_length, m->message_type),
        "key/type of %llu", (unsigned long long)m->sequence);
  CHECK(m->timestamp_ns > 0, "timestamp of %llu", (unsigned long long)m->sequence);
  if (r->timestamps != NULL) r->timestamps[m->sequence] = m->timestamp_ns;
  r->next = m->sequence + 1;
  r->lost += m->lost_before;
  ++r->count;
}

/* Checks what shmbus_poll_copy put in `buffer`, continuing the sequence in *next. */
static void check_copies(const uint8_t* buffer, const shmbus_record* records, int64_t n,
                         uint64_t* next, uint64_t* lost) {
  for (int64_t i = 0; i < n; ++i) {
    const shmbus_record* r = &records[i];
    CHECK(r->sequence == *next + r->lost_before, "copy got sequence %llu, expected %llu",
          (unsigned long long)r->sequence, (unsigned long long)*next);
    CHECK(r->offset % 8 == 0, "offset %u not aligned", r->offset);
    CHECK(capi_payload_matches(r->sequence, buffer + r->offset, r->length),
          "copied payload of %llu", (unsigned long long)r->sequence);
    CHECK(capi_tag_matches(r->sequence, buffer + r->key_offset, r->key_length, r->message_type),
          "copied key/type of %llu", (unsigned long long)r->sequence);
    *lost += r->lost_before;
    *next = r->sequence + 1;
  }
}

static void test_versions(void) {
  int major = -1, minor = -1, patch = -1;
  shmbus_version(&major, &minor, &patch);
  CHECK(major == SHMBUS_VERSION_MAJOR && minor == SHMBUS_VERSION_MINOR &&
            patch == SHMBUS_VERSION_PATCH,
        "library %d.%d.%d, headers %s", major, minor, patch, SHMBUS_VERSION_STRING);
  shmbus_version(NULL, NULL, NULL);
  CHECK(strcmp(shmbus_version_string(), SHMBUS_VERSION_STRING) == 0, "version string %s",
        shmbus_version_string());
  CHECK(shmbus_c_abi_version() == SHMBUS_C_ABI_VERSION, "C ABI %d", shmbus_c_abi_version());
  CHECK(shmbus_layout_version() >= 1 && shmbus_control_version() >= 1, "layout %u control %u",
        shmbus_layout_version(), shmbus_control_version());
}

/* 1200 records (in place and copied, every 7th tagged, one claim aborted) through a 64 KiB ring
 * to a block subscriber polling with a callback and another copying out. */
static void test_publish_and_poll_both_ways(void) {
  const char* channel = channel_name("pubsub");
  shmbus_publisher* publisher = open_publisher(channel, 1 << 16, 1024);
  shmbus_channel_info info;
  CHECK(shmbus_publisher_info(publisher, &info) == 0 && info.capacity == (1 << 16) &&
            info.max_message == 1024 && info.single_producer == 0 && info.incarnation != 0,
        "publisher info");
  shmbus_subscriber* by_callback = open_subscriber(channel, SHMBUS_POLICY_BLOCK, NULL);
  shmbus_subscriber* by_copy = open_subscriber(channel, SHMBUS_POLICY_BLOCK, "copier");
  CHECK(shmbus_subscriber_info(by_copy, &info) == 0 && info.max_message == 1024, "sub info");

  struct received r = {1, 0, 0, NULL};
  static uint8_t buffer[8 * 1024];
  shmbus_record records[64];
  uint64_t copy_next = 1, copy_lost = 0, copied = 0;
  const uint64_t total = 1200, aborted = 600;
  uint64_t sequence = 1;
  while (sequence <= total) {
    for (int k = 0; k < 100 && sequence <= total; ++k, ++sequence) {
      if (sequence == aborted) {  /* claimed, then given up: lost to every subscriber */
        shmbus_claim_ticket claim;
        CHECK(shmbus_claim(publisher, 16, NULL, 0, &claim) == 0, "claim to abort");
        CHECK(claim.sequence == aborted, "claimed %llu", (unsigned long long)claim.sequence);
        shmbus_abort(publisher, &claim);
        continue;
      }
      publish_record(publisher, sequence, sequence % 2 == 0);
    }
    int64_t n;
    while ((n = shmbus_poll(by_callback, check_message, &r, 32)) > 0) {
    }
    CHECK(n == 0, "poll: %lld", (long long)n);
    while ((n = shmbus_poll_copy(by_copy, buffer, sizeof buffer, records, 64)) > 0) {
      check_copies(buffer, records, n, &copy_next, &copy_lost);
      copied += (uint64_t)n;
    }
    CHECK(n == 0, "poll_copy: %lld", (long long)n);
  }
  CHECK(r.count == total - 1 && r.next == total + 1 && r.lost == 1,
        "callback: %llu records, next %llu, lost %llu", (unsigned long long)r.count,
        (unsigned long long)r.next, (unsigned long long)r.lost);
  CHECK(copied == total - 1 && copy_next == total + 1 && copy_lost == 1,
        "copies: %llu records, next %llu, lost %llu", (unsigned long long)copied,
        (unsigned long long)copy_next, (unsigned long long)copy_lost);
  shmbus_subscriber_counters counters;
  CHECK(shmbus_subscriber_counters_get(by_copy, &counters) == 0, "counters");
  CHECK(counters.received == total - 1 && counters.lost == 1 && counters.next_sequence == total + 1 &&
            counters.status == SHMBUS_SUBSCRIBER_OK && counters.filtered == 0 &&
            counters.spilled == 0 && counters.catching_up == 0,
        "counters: received %llu lost %llu next %llu status %d", (unsigned long long)counters.received,
        (unsigned long long)counters.lost, (unsigned long long)counters.next_sequence, counters.status);
  CHECK(strcmp(shmbus_subscriber_error(by_copy), "") == 0, "subscriber error '%s'",
        shmbus_subscriber_error(by_copy));

  /* The statistics, from outside, while all three are attached. */
  shmbus_channel_stats* stats = NULL;
  CHECK(shmbus_channel_stats_read(channel, &stats) == 0 && stats != NULL, "stats");
  CHECK(strcmp(stats->name, channel) == 0 && stats->capacity == (1 << 16) &&
            stats->max_message == 1024 && stats->head_sequence == total &&
            stats->published_messages == total - 1 && stats->abandoned == 0,
        "stats: name %s head %llu published %llu", stats->name,
        (unsigned long long)stats->head_sequence, (unsigned long long)stats->published_messages);
  CHECK(stats->producer_count == 1 && stats->producers[0].pid == (uint32_t)getpid() &&
            stats->producers[0].alive && stats->producers[0].published == total - 1,
        "producer stats: %zu, published %llu", stats->producer_count,
        stats->producer_count ? (unsigned long long)stats->producers[0].published : 0ull);
  CHECK(stats->subscriber_count == 2, "%zu subscribers", stats->subscriber_count);
  int named = 0;
  for (size_t i = 0; i < stats->subscriber_count; ++i) {
    const shmbus_subscriber_stats* s = &stats->subscribers[i];
    CHECK(s->pid == (uint32_t)getpid() && s->alive && s->policy == SHMBUS_POLICY_BLOCK &&
              s->state == SHMBUS_STATE_ALIVE && s->has_latency == 0,
          "subscriber %zu: pid %u policy %d state %d", i, s->pid, s->policy, s->state);
    if (strcmp(s->name, "copier") == 0) ++named;
  }
  CHECK(named == 1, "the named subscriber is listed once (%d)", named);
  CHECK(stats->journal == NULL, "no journaler");
  shmbus_channel_stats_free(stats);
  shmbus_channel_stats_free(NULL);

  shmbus_subscriber_close(by_callback);
  shmbus_subscriber_close(by_copy);
  shmbus_publisher_close(publisher);
  CHECK(shmbus_channel_remove(channel) == 0, "remove");
}

/* A drop subscriber left behind by a whole ring loses the oldest records: every record it does
 * get is the right one, and the sequences it missed are exactly its lost count. */
static void test_drop_subscriber_lapped_counts_its_gap(void) {
  const char* channel = channel_name("drop");
  shmbus_publisher* publisher = open_publisher(channel, 4096, 512);
  shmbus_subscriber* drop = open_subscriber(channel, SHMBUS_POLICY_DROP, NULL);
  const uint64_t total = 500; /* about 40 KB of frames through a 4 KiB ring */
  for (uint64_t s = 1; s <= total; ++s) publish_record(publisher, s, s % 3 == 0);
  struct received r = {1, 0, 0, NULL};
  /* A lapped poll may deliver nothing while it moves to where the ring's oldest record is now. */
  for (int empty = 0; empty < 100 && r.next <= total;) {
    const int64_t n = shmbus_poll(drop, check_message, &r, 16);
    CHECK(n >= 0, "poll: %lld", (long long)n);
    empty = n == 0 ? empty + 1 : 0;
  }
  CHECK(r.next == total + 1, "the last record delivered is %llu", (unsigned long long)(r.next - 1));
  CHECK(r.lost > 0 && r.count + r.lost == total, "received %llu + lost %llu != %llu",
        (unsigned long long)r.count, (unsigned long long)r.lost, (unsigned long long)total);
  shmbus_subscriber_counters counters;
  CHECK(shmbus_subscriber_counters_get(drop, &counters) == 0 && counters.lost == r.lost &&
            counters.received == r.count,
        "counters lost %llu received %llu", (unsigned long long)counters.lost,
        (unsigned long long)counters.received);
  shmbus_subscriber_close(drop);
  shmbus_publisher_close(publisher);
  CHECK(shmbus_channel_remove(channel) == 0, "remove");
}

/* wait, filters, and manual release holding the producers back until shmbus_release. */
static void test_wait_filter_and_release(void) {
  const char* channel = channel_name("wait");
  shmbus_publisher* publisher = open_publisher(channel, 4096, 512);
  shmbus_subscriber_options options;
  shmbus_subscriber_options_init(&options);
  options.policy = SHMBUS_POLICY_BLOCK;
  options.start = SHMBUS_START_EARLIEST;
  options.manual_release = 1;
  shmbus_subscriber* manual = NULL;
  CHECK(shmbus_subscriber_open(channel, &options, &manual) == 0, "manual subscriber");
  const uint16_t types[] = {2, 4};
  shmbus_subscriber_options_init(&options);
  options.policy = SHMBUS_POLICY_DROP;
  options.start = SHMBUS_START_EARLIEST;
  options.filter_types = types;
  options.filter_type_count = 2;
  shmbus_subscriber* by_type = NULL;
  CHECK(shmbus_subscriber_open(channel, &options, &by_type) == 0, "filtered subscriber");

  CHECK(shmbus_wait(manual, 20000000, 1000) == -ETIMEDOUT, "wait on an empty channel");
  CHECK(strstr(shmbus_last_error(), "timeout") != NULL, "message '%s'", shmbus_last_error());

  /* Fill the ring: the manual-release subscriber has released nothing, so publishing stops. */
  uint64_t s = 1;
  int rc;
  for (;; ++s) {
    uint8_t payload[64];
    capi_payload_fill(s, payload);
    char key[8];
    shmbus_tag tag = {key, capi_key(s, key), capi_message_type(s)};
    rc = shmbus_publish(publisher, payload, capi_payload_length(s),
                        capi_is_tagged(s) ? &tag : NULL, 0);
    if (rc != 0) break;
  }
  CHECK(rc == -EAGAIN && strstr(shmbus_last_error(), "back-pressured") != NULL,
        "a full ring: %d", rc);
  const uint64_t published = s - 1;
  CHECK(shmbus_wait(manual, 1000000000, 1000) == 0, "wait with records ready");
  struct received r = {1, 0, 0, NULL};
  while (shmbus_poll(manual, check_message, &r, 64) > 0) {
  }
  CHECK(r.count == published, "manual subscriber got %llu of %llu", (unsigned long long)r.count,
        (unsigned long long)published);

  /* The type filter delivered the tagged records of types 2 and 4 and counted the rest. */
  uint64_t matched = 0, expected = 0;
  for (uint64_t q = 1; q <= published; ++q) {
    if (capi_is_tagged(q) && (capi_message_type(q) == 2 || capi_message_type(q) == 4)) ++expected;
  }
  shmbus_record records[64];
  static uint8_t buffer[64 * 512];
  /* A batch of filtered records only delivers nothing: poll until several find nothing. */
  for (int empty = 0; empty < 10;) {
    const int64_t n = shmbus_poll_copy(by_type, buffer, sizeof buffer, records, 64);
    CHECK(n >= 0, "poll_copy: %lld", (long long)n);
    empty = n == 0 ? empty + 1 : 0;
    for (int64_t i = 0; i < n; ++i) {
      CHECK(records[i].message_type == 2 || records[i].message_type == 4, "type %u",
            records[i].message_type);
      CHECK(capi_payload_matches(records[i].sequence, buffer + records[i].offset,
                                 records[i].length),
            "filtered payload of %llu", (unsigned long long)records[i].sequence);
      ++matched;
    }
  }
  shmbus_subscriber_counters counters;
  CHECK(shmbus_subscriber_counters_get(by_type, &counters) == 0, "counters");
  CHECK(matched == expected && counters.filtered == published - expected && counters.lost == 0,
        "filter: %llu matched of %llu expected, %llu filtered of %llu, lost %llu", (unsigned long long)matched,
        (unsigned long long)expected, (unsigned long long)counters.filtered, (unsigned long long)published, (unsigned long long)counters.lost);
  /* The manual-release subscriber still holds the producers back, until it releases. */
  shmbus_claim_ticket claim;
  CHECK(shmbus_claim(publisher, 64, NULL, 0, &claim) == -EAGAIN, "still held before release");
  CHECK(shmbus_release(manual) == 0, "release");
  CHECK(shmbus_claim(publisher, 64, NULL, 0, &claim) == 0, "room after release");
  shmbus_abort(publisher, &claim);
  shmbus_subscriber_close(manual);
  shmbus_subscriber_close(by_type);
  shmbus_publisher_close(publisher);
  CHECK(shmbus_channel_remove(channel) == 0, "remove");
}

/* The journal directory's first segment file (the oldest), into path. */
static void first_segment(const char* dir, char* path, size_t size) {
  DIR* d = opendir(dir);
  CHECK(d != NULL, "opendir %s", dir);
  char best[256] = "";
  struct dirent* e;
  while ((e = readdir(d)) != NULL) {
    const size_t len = strlen(e->d_name);
    if (len > 8 && strcmp(e->d_name + len - 8, ".journal") == 0 &&
        (best[0] == '\0' || strcmp(e->d_name, best) < 0)) {
      snprintf(best, sizeof best, "%s", e->d_name);
    }
  }
  closedir(d);
  CHECK(best[0] != '\0', "no segment in %s", dir);
  snprintf(path, size, "%s/%s", dir, best);
}

static int count_segments(const char* dir) {
  DIR* d = opendir(dir);
  int n = 0;
  struct dirent* e;
  while (d != NULL && (e = readdir(d)) != NULL) {
    const size_t len = strlen(e->d_name);
    if (len > 8 && strcmp(e->d_name + len - 8, ".journal") == 0) ++n;
  }
  if (d != NULL) closedir(d);
  return n;
}

/* Reads the whole journal from where the reader stands, checking each record against what was
 * published; returns how many it read. */
static uint64_t read_through(shmbus_journal_reader* reader, uint64_t first, uint64_t last,
                             const int64_t* timestamps) {
  shmbus_journal_record record;
  uint64_t expected = first, n = 0;
  int rc;
  while ((rc = shmbus_journal_next(reader, &record)) == 1) {
    CHECK(record.type == SHMBUS_JOURNAL_DATA && record.sequence == expected,
          "journal record %llu (type %d), expected %llu", (unsigned long long)record.sequence,
          record.type, (unsigned long long)expected);
    CHECK(capi_payload_matches(record.sequence, record.payload, record.length),
          "journaled payload of %llu", (unsigned long long)record.sequence);
    CHECK(capi_tag_matches(record.sequence, record.key, record.key_length, record.message_type),
          "journaled key/type of %llu", (unsigned long long)record.sequence);
    CHECK(record.timestamp_ns == timestamps[record.sequence], "journaled timestamp of %llu",
          (unsigned long long)record.sequence);
    ++expected;
    ++n;
  }
  CHECK(rc == 0, "journal read ended with %d", rc);
  CHECK(expected == last + 1, "the journal ends before %llu", (unsigned long long)expected);
  return n;
}

static void test_journal_written_and_read_back(void) {
  const char* channel = channel_name("journal");
  char dir[] = "/tmp/capi-journal-XXXXXX";
  CHECK(mkdtemp(dir) != NULL, "mkdtemp");
  shmbus_publisher* publisher = open_publisher(channel, 1 << 16, 1024);
  shmbus_journaler_options options;
  shmbus_journaler_options_init(&options);
  options.segment_bytes = 16 * 1024; /* several segments */
  shmbus_journaler* journaler = NULL;
  CHECK(shmbus_journaler_open(channel, dir, &options, &journaler) == 0, "journaler open");
  /* The timestamps, as a subscriber sees them, to compare with the journal's. */
  shmbus_subscriber* watcher = open_subscriber(channel, SHMBUS_POLICY_BLOCK, NULL);
  enum { kTotal = 2000 };
  static int64_t timestamps[kTotal + 1];
  struct received r = {1, 0, 0, timestamps};
  uint64_t journaled = 0;
  for (uint64_t s = 1; s <= kTotal; ++s) {
    publish_record(publisher, s, s % 2 == 1);
    if (s % 50 == 0) {
      while (shmbus_poll(watcher, check_message, &r, 64) > 0) {
      }
      const int64_t appended = shmbus_journaler_step(journaler, 0);
      CHECK(appended >= 0, "journaler step: %lld", (long long)appended);
      journaled += (uint64_t)appended;
      /* Timestamps that differ, so that a time seek has one answer. */
      const struct timespec pause = {0, 200000};
      nanosleep(&pause, NULL);
    }
  }
  while (journaled < kTotal) {
    const int64_t appended = shmbus_journaler_step(journaler, 10);
    CHECK(appended >= 0, "journaler step: %lld", (long long)appended);
    journaled += (uint64_t)appended;
  }
  CHECK(shmbus_journaler_drain(journaler, 10000) == 0, "drain");
  shmbus_channel_stats* stats = NULL;
  CHECK(shmbus_channel_stats_read(channel, &stats) == 0, "stats");
  CHECK(stats->journal != NULL && stats->journal->pid == (uint32_t)getpid() &&
            stats->journal->written_sequence == kTotal && strstr(stats->journal->dir, dir) != NULL,
        "journal stats");
  shmbus_channel_stats_free(stats);
  shmbus_journaler_close(journaler);
  CHECK(r.count == kTotal, "watcher saw %llu", (unsigned long long)r.count);
  CHECK(count_segments(dir) >= 3, "%d segments", count_segments(dir));

  shmbus_journal_reader* reader = NULL;
  CHECK(shmbus_journal_open(dir, &reader) == 0, "journal open");
  CHECK(shmbus_journal_first_sequence(reader) == 1, "first sequence %llu",
        (unsigned long long)shmbus_journal_first_sequence(reader));
  CHECK(read_through(reader, 1, kTotal, timestamps) == kTotal, "whole journal");
  CHECK(shmbus_journal_refresh(reader) == 0, "refresh");
  shmbus_journal_record record;
  CHECK(shmbus_journal_next(reader, &record) == 0, "still at the end");

  CHECK(shmbus_journal_seek_sequence(reader, 1500) == 0, "seek 1500");
  CHECK(read_through(reader, 1500, kTotal, timestamps) == kTotal - 1499, "from 1500");
  /* By time: the first record published at or after record 1234's time. */
  uint64_t first_at = 1234;
  while (first_at > 1 && timestamps[first_at - 1] >= timestamps[1234]) --first_at;
  CHECK(shmbus_journal_seek_time(reader, timestamps[1234]) == 0, "seek by time");
  CHECK(read_through(reader, first_at, kTotal, timestamps) == kTotal - first_at + 1, "from time");
  CHECK(shmbus_journal_seek_time(reader, timestamps[kTotal] + 1) == 0, "seek past the end");
  CHECK(shmbus_journal_next(reader, &record) == 0, "nothing past the end");
  shmbus_journal_close(reader);

  /* Damage in the middle of the oldest segment: a clear error, never a crash. */
  char segment[512];
  first_segment(dir, segment, sizeof segment);
  const int fd = open(segment, O_RDWR);
  CHECK(fd >= 0, "open %s", segment);
  struct stat st;
  CHECK(fstat(fd, &st) == 0 && st.st_size > 4096, "segment size");
  uint8_t garbage[64];
  memset(garbage, 0xA5, sizeof garbage);
  CHECK(pwrite(fd, garbage, sizeof garbage, st.st_size / 2) == (ssize_t)sizeof garbage, "flip");
  close(fd);
  CHECK(shmbus_journal_open(dir, &reader) == 0, "journal open after damage");
  int rc;
  uint64_t good = 0;
  while ((rc = shmbus_journal_next(reader, &record)) == 1) {
    CHECK(capi_payload_matches(record.sequence, record.payload, record.length),
          "payload before the damage, %llu", (unsigned long long)record.sequence);
    ++good;
  }
  CHECK(rc == -EBADMSG, "damage gives -EBADMSG, got %d after %llu records", rc,
        (unsigned long long)good);
  const char* base = strrchr(segment, '/') + 1;
  CHECK(strstr(shmbus_last_error(), base) != NULL, "the message names the segment %s: '%s'", base,
        shmbus_last_error());
  CHECK(good > 0 && good < kTotal, "%llu records before the damage", (unsigned long long)good);
  CHECK(shmbus_journal_skip_damage(reader) == 1, "skip the damage");
  uint64_t after = 0;
  while ((rc = shmbus_journal_next(reader, &record)) == 1) {
    CHECK(record.type == SHMBUS_JOURNAL_GAP ||
              capi_payload_matches(record.sequence, record.payload, record.length),
          "payload after the damage, %llu", (unsigned long long)record.sequence);
    ++after;
  }
  CHECK(rc == 0 && after > 0, "reading on after the damage: %d, %llu records", rc,
        (unsigned long long)after);
  shmbus_journal_close(reader);
  shmbus_journal_close(NULL);

  shmbus_subscriber_close(watcher);
  shmbus_publisher_close(publisher);
  CHECK(shmbus_channel_remove(channel) == 0, "remove");
  char command[600];
  snprintf(command, sizeof command, "rm -rf '%s'", dir);
  CHECK(system(command) == 0, "removing %s", dir);
}

/* Every kind of bad input: a negative errno and a message naming what is wrong. */
static void test_bad_input(void) {
  shmbus_publisher* publisher = NULL;
  shmbus_subscriber* subscriber = NULL;
  int rc = shmbus_publisher_open("bad/name", NULL, &publisher);
  CHECK(rc == -EINVAL && publisher == NULL, "bad name: %d", rc);
  CHECK(strstr(shmbus_last_error(), "bad/name") != NULL, "message '%s'", shmbus_last_error());

  const char* missing = channel_name("missing");
  shmbus_subscriber_options options;
  shmbus_subscriber_options_init(&options);
  options.open_timeout_ms = 50;
  rc = shmbus_subscriber_open(missing, &options, &subscriber);
  CHECK(rc == -ENOENT && subscriber == NULL, "missing channel: %d", rc);
  CHECK(strstr(shmbus_last_error(), missing) != NULL, "message '%s'", shmbus_last_error());
  rc = shmbus_channel_remove(missing);
  CHECK(rc == -ENOENT, "removing a missing channel: %d", rc);
  shmbus_channel_stats* stats = NULL;
  rc = shmbus_channel_stats_read(missing, &stats);
  CHECK(rc == -ENOENT && stats == NULL, "stats of a missing channel: %d", rc);

  /* A zeroed options struct (no _init) would abandon every claim at once: refused. */
  shmbus_subscriber_options zeroed;
  memset(&zeroed, 0, sizeof zeroed);
  zeroed.policy = SHMBUS_POLICY_DROP;
  zeroed.start = SHMBUS_START_LATEST;
  rc = shmbus_subscriber_open(missing, &zeroed, &subscriber);
  CHECK(rc == -EINVAL && strstr(shmbus_last_error(), "abandon_timeout") != NULL,
        "zero timeouts: %d '%s'", rc, shmbus_last_error());

  options.policy = 9;
  rc = shmbus_subscriber_open(missing, &options, &subscriber);
  CHECK(rc == -EINVAL && strstr(shmbus_last_error(), "policy") != NULL, "bad policy: %d '%s'", rc,
        shmbus_last_error());

  shmbus_channel_options channel_options;
  shmbus_channel_options_init(&channel_options);
  channel_options.capacity = 5000; /* not a power of two */
  const char* bad = channel_name("badcapacity");
  rc = shmbus_publisher_open(bad, &channel_options, &publisher);
  CHECK(rc == -EINVAL && strstr(shmbus_last_error(), "5000") != NULL, "bad capacity: %d '%s'", rc,
        shmbus_last_error());

  shmbus_journal_reader* reader = NULL;
  rc = shmbus_journal_open("/nonexistent/capi-journal", &reader);
  CHECK(rc == -ENOENT && reader == NULL && strstr(shmbus_last_error(), "/nonexistent") != NULL,
        "missing journal: %d '%s'", rc, shmbus_last_error());

  CHECK(shmbus_publisher_open(NULL, NULL, &publisher) == -EINVAL, "NULL channel");
  CHECK(shmbus_subscriber_open("x", NULL, NULL) == -EINVAL, "NULL out");
  CHECK(shmbus_claim(NULL, 8, NULL, 0, NULL) == -EINVAL, "NULL publisher");
  CHECK(shmbus_commit(NULL, NULL) == -EINVAL, "NULL commit");
  shmbus_abort(NULL, NULL);
  CHECK(shmbus_publish(NULL, "x", 1, NULL, 0) == -EINVAL, "NULL publish");
  CHECK(shmbus_poll(NULL, check_message, NULL, 1) == -EINVAL, "NULL poll");
  CHECK(shmbus_poll_copy(NULL, NULL, 0, NULL, 0) == -EINVAL, "NULL poll_copy");
  CHECK(shmbus_wait(NULL, 0, 0) == -EINVAL, "NULL wait");
  CHECK(shmbus_release(NULL) == -EINVAL, "NULL release");
  CHECK(shmbus_journal_next(NULL, NULL) == -EINVAL, "NULL next");
  CHECK(shmbus_journal_seek_sequence(NULL, 1) == -EINVAL, "NULL seek");
  CHECK(shmbus_journaler_step(NULL, 0) == -EINVAL, "NULL step");
  CHECK(shmbus_journaler_open("x", NULL, NULL, NULL) == -EINVAL, "NULL journaler");
  shmbus_publisher_close(NULL);
  shmbus_subscriber_close(NULL);
  shmbus_journaler_close(NULL);

  /* On a real channel: a record above max_message, a key too long, a buffer too small. */
  const char* channel = channel_name("limits");
  publisher = open_publisher(channel, 4096, 512);
  subscriber = open_subscriber(channel, SHMBUS_POLICY_DROP, NULL);
  static uint8_t big[600];
  rc = shmbus_publish(publisher, big, sizeof big, NULL, 0);
  CHECK(rc == -EMSGSIZE && strstr(shmbus_last_error(), "max_message") != NULL, "too large: %d",
        rc);
  static uint8_t long_key[300];
  const shmbus_tag tag = {long_key, sizeof long_key, 1};
  shmbus_claim_ticket claim;
  rc = shmbus_claim(publisher, 8, &tag, 0, &claim);
  CHECK(rc == -EMSGSIZE, "key too long: %d", rc);
  CHECK(claim.data == NULL && claim.sequence == 0, "a failed claim empties the ticket");
  /* A ticket whose claim failed, or that was committed already, holds nothing to commit again:
   * the second commit must not rewrite the published record (sequence 1 stays one record). */
  rc = shmbus_commit(publisher, &claim);
  CHECK(rc == -EINVAL && strstr(shmbus_last_error(), "no claim") != NULL,
        "commit of a failed claim: %d '%s'", rc, shmbus_last_error());
  rc = shmbus_claim(publisher, 8, NULL, 0, &claim);
  CHECK(rc == 0 && claim.sequence == 1, "claim: %d seq %llu", rc,
        (unsigned long long)claim.sequence);
  memcpy(claim.data, "12345678", 8);
  CHECK(shmbus_commit(publisher, &claim) == 0, "commit");
  CHECK(claim.sequence == 1, "a committed ticket still says its sequence");
  rc = shmbus_commit(publisher, &claim);
  CHECK(rc == -EINVAL, "second commit of one ticket: %d", rc);
  shmbus_abort(publisher, &claim); /* ignored */
  CHECK(shmbus_publish(publisher, "abcdefgh", 8, NULL, 0) == 0, "publish after");
  {
    uint8_t copies[2 * 512];
    shmbus_record got[2];
    rc = (int)shmbus_poll_copy(subscriber, copies, sizeof copies, got, 2);
    CHECK(rc == 2, "both records: %d", rc);
    CHECK(got[0].sequence == 1 && got[0].length == 8 &&
              memcmp(copies + got[0].offset, "12345678", 8) == 0 && got[0].lost_before == 0,
          "record 1 as committed once");
    CHECK(got[1].sequence == 2 && got[1].length == 8 &&
              memcmp(copies + got[1].offset, "abcdefgh", 8) == 0 && got[1].lost_before == 0,
          "record 2 right after it, nothing lost");
  }
  uint8_t small[100];
  shmbus_record records[4];
  rc = (int)shmbus_poll_copy(subscriber, small, sizeof small, records, 4);
  CHECK(rc == -ENOBUFS && strstr(shmbus_last_error(), "max_message") != NULL,
        "small buffer: %d '%s'", rc, shmbus_last_error());
  shmbus_subscriber_close(subscriber);
  shmbus_publisher_close(publisher);
  CHECK(shmbus_channel_remove(channel) == 0, "remove");
}

struct test_case {
  const char* name;
  void (*run)(void);
};

static const struct test_case kCases[] = {
    {"versions", test_versions},
    {"publish_and_poll_both_ways", test_publish_and_poll_both_ways},
    {"drop_subscriber_lapped_counts_its_gap", test_drop_subscriber_lapped_counts_its_gap},
    {"wait_filter_and_release", test_wait_filter_and_release},
    {"journal_written_and_read_back", test_journal_written_and_read_back},
    {"bad_input", test_bad_input},
};

int main(int argc, char** argv) {
  int ran = 0;
  for (size_t i = 0; i < sizeof kCases / sizeof kCases[0]; ++i) {
    if (argc > 1 && strcmp(argv[1], kCases[i].name) != 0) continue;
    kCases[i].run();
    printf("ok %s\n", kCases[i].name);
    ++ran;
  }
  if (ran == 0) {
    fprintf(stderr, "no test case named %s\n", argc > 1 ? argv[1] : "(none)");
    return 2;
  }
  return 0;
}
