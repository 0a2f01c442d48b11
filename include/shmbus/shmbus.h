/* shmbus's C API: channels, publishers, subscribers, statistics and journal reading from C (or any
 * language that calls C). It compiles as C99, C11 and C++; every function has C linkage.
 *
 * The model (docs/c-api.md tells it at length):
 *   - Handles are opaque pointers (shmbus_publisher, shmbus_subscriber, ...), made by an _open
 *     function and given back with the matching _close/_free, which accept NULL.
 *   - Functions returning int return 0 on success or a negative errno value (-EINVAL, -ENOENT...),
 *     as liburing does; functions returning a count (int64_t) return it (>= 0) or a negative errno.
 *     After a failure shmbus_last_error() holds a message naming what is wrong (the channel, the
 *     file, the value); a success leaves it as it was.
 *   - No C++ exception crosses this API: every failure, an allocation failure included, becomes a
 *     negative errno and a message.
 *   - Hot-path calls (shmbus_claim, shmbus_commit, shmbus_abort, shmbus_publish, shmbus_poll,
 *     shmbus_poll_copy) allocate nothing, take no lock and make no system call, as the C++ calls
 *     under them do; a failure on them writes its message into a fixed per-thread buffer (no
 *     allocation either). tests/capi/capi_hot_path_test.cpp proves it.
 *   - Thread-safety: a handle is used by one thread at a time (the C++ objects under it are not
 *     synchronized); different handles may be used on different threads at once. Functions that
 *     take no handle may be called from any thread.
 *
 * Error values used throughout:
 *   -EINVAL     a bad argument (a NULL pointer, a bad channel name, options out of range)
 *   -ENOENT     no such channel, directory or file
 *   -EACCES     permission denied
 *   -ENOSPC     no space (shared memory, disk)
 *   -EPROTO     written by another layout version or build of shmbus
 *   -EBADMSG    corrupt: shared memory or a journal file holds what no shmbus writer produces
 *   -EBUSY      in use (a named subscriber attached elsewhere, a second single producer)
 *   -ETIMEDOUT  a wait gave up
 *   -EAGAIN     back-pressure: a block subscriber has not freed the space; nothing was claimed
 *   -EMSGSIZE   a record (key included) above the channel's max_message, or a key too long
 *   -ECANCELED  the claim was held past the abandon timeout and a peer marked it abandoned
 *   -ENOTCONN   the subscriber was evicted (its liveness timeout passed); reopen it
 *   -ENOBUFS    shmbus_poll_copy's buffer cannot hold one record of the channel's max_message
 *   -ENOMEM     an allocation failed
 *   -EIO        any other failure of the system or the library (the message says which)
 */
#ifndef SHMBUS_SHMBUS_H
#define SHMBUS_SHMBUS_H

#include <stddef.h>
#include <stdint.h>

#include "shmbus/version.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The version of this header's structs and functions. shmbus_c_abi_version() returns the one the
 * library was built with; a program should refuse to run when they differ. */
#define SHMBUS_C_ABI_VERSION 1

/* ---- Versions ------------------------------------------------------------------------------- */

/* The library's version as "MAJOR.MINOR.PATCH" (a static string), and its parts. Compare with
 * SHMBUS_VERSION_MAJOR and SHMBUS_VERSION_MINOR of shmbus/version.h: while the major version is 0
 * only the same minor version is compatible. Thread-safe. */
const char* shmbus_version_string(void);
void shmbus_version(int* major, int* minor, int* patch); /* any pointer may be NULL */
/* SHMBUS_C_ABI_VERSION as the library was built. */
int shmbus_c_abi_version(void);
/* The shared-memory layout versions: of the ring (records) and of the control segment. Processes
 * of builds with other versions refuse each other's channels (-EPROTO). */
uint32_t shmbus_layout_version(void);
uint32_t shmbus_control_version(void);

/* ---- Errors --------------------------------------------------------------------------------- */

/* The message of this thread's last failure: names what is wrong, ready to show an operator.
 * "" before any. The string is this thread's buffer: valid until this thread's next failing call.
 * Messages longer than the buffer (1023 bytes) are cut. Thread-safe (each thread has its own). */
const char* shmbus_last_error(void);

/* ---- Channels ------------------------------------------------------------------------------- */

/* What a slow subscriber does to the producers. */
enum {
  SHMBUS_POLICY_BLOCK = 1, /* lossless: gates the producers (back-pressure after a lap) */
  SHMBUS_POLICY_DROP = 2,  /* never slows producers; losses are counted by sequence gap */
  SHMBUS_POLICY_SPILL = 3  /* never slows producers; catches up from the journal */
};

/* Where a new subscriber starts. */
enum {
  SHMBUS_START_LATEST = 0,   /* the next message published */
  SHMBUS_START_EARLIEST = 1, /* the oldest message the ring still holds */
  SHMBUS_START_SEQUENCE = 2  /* start_sequence (or the earliest retained if it is gone) */
};

/* How a channel is created (include/shmbus/options.hpp, ChannelOptions, says more). Fill it with
 * shmbus_channel_options_init, then change what you need. */
typedef struct shmbus_channel_options {
  uint64_t capacity;         /* ring data bytes, a power of two (default 4 MiB) */
  uint32_t max_message;      /* largest record, key included; <= capacity / 4 - 32 (64 KiB) */
  uint32_t mode;             /* file mode of the ring (0660): who may publish, who only read */
  int64_t open_timeout_ms;   /* waiting for a channel being created (2000) */
  int single_producer;       /* nonzero: one producer process at a time (0) */
  int counters;              /* nonzero: keep message/byte counters for `shmbus stat` (1) */
  uint32_t subscriber_slots; /* 1 to 4096 (64) */
  uint32_t producer_slots;   /* 1 to 1024 (32) */
  int64_t gating_group;      /* a gid trusted to gate the producers; -1: none (-1) */
  int accept_existing;       /* nonzero: an existing channel of another configuration is used as
                                it is instead of refused (0) */
} shmbus_channel_options;

/* Fills `options` with the defaults above. */
void shmbus_channel_options_init(shmbus_channel_options* options);

/* A channel's identity, as its creator wrote it. */
typedef struct shmbus_channel_info {
  uint64_t capacity;
  uint32_t max_message;
  uint32_t subscriber_slots;
  uint32_t producer_slots;
  int single_producer;
  uint64_t incarnation; /* changes when the channel is removed and created anew */
} shmbus_channel_info;

/* Unlinks the channel's shared-memory objects (processes that map it keep their mappings).
 * 0, or -ENOENT (no such channel), -EINVAL (not a channel's name), -EACCES... Thread-safe. */
int shmbus_channel_remove(const char* channel);

/* ---- Publishing ----------------------------------------------------------------------------- */

typedef struct shmbus_publisher shmbus_publisher;

/* Opens `channel` for publishing, creating it with `options` if it does not exist. With options
 * NULL an existing channel is opened as it is (whatever its configuration) and a missing one is
 * created with the defaults. On success *out is a handle to give back to shmbus_publisher_close.
 * Errors: -EINVAL (bad name or options, or an existing channel of another configuration), -EACCES,
 * -EBUSY (a single-producer channel already has a live producer), -EPROTO, -EBADMSG, -ETIMEDOUT. */
int shmbus_publisher_open(const char* channel, const shmbus_channel_options* options,
                          shmbus_publisher** out);
/* Gives up the producer slot and unmaps. NULL is ignored. Every claim must be committed or
 * aborted first. */
void shmbus_publisher_close(shmbus_publisher* publisher);
/* The channel's identity. 0, or -EINVAL. */
int shmbus_publisher_info(const shmbus_publisher* publisher, shmbus_channel_info* out);

/* What a record carries besides its payload (the C++ RecordTag): a key (subscribers may filter on
 * it, consumer groups keep per-key order) and an application message type. */
typedef struct shmbus_tag {
  const void* key;      /* key_length bytes; NULL with key_length 0: no key */
  uint32_t key_length;  /* at most SHMBUS_MAX_KEY_LENGTH */
  uint16_t message_type; /* 0: none */
} shmbus_tag;
#define SHMBUS_MAX_KEY_LENGTH 256

/* Space claimed in the ring: write `size` bytes at `data`, then shmbus_commit (or shmbus_abort).
 * `internal` belongs to the library. A claim lives in the caller's memory (a local variable). */
typedef struct shmbus_claim_ticket {
  void* data;        /* the payload, in the ring (after the key for a tagged claim) */
  uint32_t size;     /* payload bytes to write */
  uint64_t sequence; /* the record's sequence */
  uint64_t internal[10];
} shmbus_claim_ticket;

/* Claims `size` payload bytes for a record carrying `tag` (NULL: none) and fills *claim. With
 * timeout_ns 0 it tries once; otherwise it spins (then yields) while back-pressured, up to
 * timeout_ns. Hot path: no allocation, lock or system call (a timed wait may yield).
 * 0, or -EAGAIN (back-pressured), -ETIMEDOUT, -EMSGSIZE (record or key too large), -EBADMSG
 * (the channel's claim word is corrupt), -EINVAL (NULL arguments). */
int shmbus_claim(shmbus_publisher* publisher, uint32_t size, const shmbus_tag* tag,
                 int64_t timeout_ns, shmbus_claim_ticket* claim);
/* Publishes a claimed record. Hot path. 0, or -ECANCELED (it was held past the abandon timeout
 * and a peer marked it abandoned: its sequence is lost), -EBADMSG, -EINVAL (NULL arguments, or
 * the ticket holds no claim: its claim failed, or it was committed or aborted already). A failed
 * claim empties the ticket (data NULL, sequence 0); after a commit or abort its fields still say
 * what was claimed, but it can be neither committed nor aborted again. */
int shmbus_commit(shmbus_publisher* publisher, shmbus_claim_ticket* claim);
/* Abandons a claim: subscribers count its sequence as lost. Hot path. A ticket that holds no
 * claim is ignored. */
void shmbus_abort(shmbus_publisher* publisher, shmbus_claim_ticket* claim);
/* Claims, copies `size` bytes from `payload` and commits: one call. Same timeouts and errors as
 * shmbus_claim and shmbus_commit. Hot path. */
int shmbus_publish(shmbus_publisher* publisher, const void* payload, uint32_t size,
                   const shmbus_tag* tag, int64_t timeout_ns);

/* ---- Subscribing ---------------------------------------------------------------------------- */

typedef struct shmbus_subscriber shmbus_subscriber;

/* How a subscriber is opened (SubscriberOptions in include/shmbus/options.hpp). Fill it with
 * shmbus_subscriber_options_init, then change what you need. The pointers are read during
 * shmbus_subscriber_open only. */
typedef struct shmbus_subscriber_options {
  int policy;                 /* SHMBUS_POLICY_* (BLOCK) */
  int start;                  /* SHMBUS_START_* (LATEST) */
  uint64_t start_sequence;    /* for SHMBUS_START_SEQUENCE */
  const char* name;           /* NULL or "": anonymous; a named subscriber resumes where the
                                 last process under that name stopped */
  int64_t liveness_timeout_ns; /* a dead block subscriber is evicted after this (5 s) */
  int64_t abandon_timeout_ns;  /* a claim held this long is marked abandoned (1 s) */
  int64_t open_timeout_ms;     /* waiting for a channel being created (2000) */
  int manual_release;          /* nonzero: positions are published by shmbus_release only */
  int latency_histogram;       /* nonzero: record end-to-end latency for `shmbus stat` */
  /* Filter: only records whose key is exactly these bytes (when filter_key is not NULL) and
     whose message type is one of filter_types (when filter_type_count > 0) are delivered. */
  const void* filter_key;
  uint32_t filter_key_length;
  const uint16_t* filter_types;
  size_t filter_type_count;
} shmbus_subscriber_options;

void shmbus_subscriber_options_init(shmbus_subscriber_options* options);

/* Opens a subscriber of `channel` (options NULL: the defaults). *out gets the handle.
 * Errors: -ENOENT (no such channel, after open_timeout_ms), -EINVAL, -EACCES, -EBUSY (the name is
 * attached in a live process, or no subscriber slot is free), -EPROTO, -EBADMSG, -ETIMEDOUT. */
int shmbus_subscriber_open(const char* channel, const shmbus_subscriber_options* options,
                           shmbus_subscriber** out);
/* Unregisters (a named subscriber keeps its position) and unmaps. NULL is ignored. */
void shmbus_subscriber_close(shmbus_subscriber* subscriber);
int shmbus_subscriber_info(const shmbus_subscriber* subscriber, shmbus_channel_info* out);

/* One record handed to a poll callback. Every pointer points into the ring (or the subscriber's
 * copy of it) and is valid only during the callback. */
typedef struct shmbus_message {
  uint64_t sequence;
  int64_t timestamp_ns;  /* publish time, nanoseconds since the Unix epoch */
  const void* payload;
  uint32_t length;       /* payload bytes */
  uint16_t key_length;   /* 0: no key */
  uint16_t message_type; /* 0: none */
  const void* key;
  uint64_t lost_before;  /* sequences lost just before this one (drop policy, abandoned claims) */
} shmbus_message;

/* Called once per record, in sequence order. It must not throw, longjmp, or call this
 * subscriber. A poll cannot put records back, so every record of the batch is delivered: bound
 * the batch with max_messages. */
typedef void (*shmbus_message_fn)(const shmbus_message* message, void* context);

/* Delivers up to max_messages records to on_message(message, context). Hot path: no allocation,
 * lock or system call (the spill policy's catch-up from the journal files is its one slow path).
 * Returns how many were delivered, or -ENOTCONN (evicted: reopen) or -EBADMSG
 * (the ring holds a record no shmbus writer produces) when nothing was delivered. 0 when nothing
 * was ready, and also when the batch held only records the filter skipped or a lapped drop
 * subscriber moved on to the oldest record the ring holds: poll again. */
int64_t shmbus_poll(shmbus_subscriber* subscriber, shmbus_message_fn on_message, void* context,
                    size_t max_messages);

/* Where shmbus_poll_copy put one record in the caller's buffer. */
typedef struct shmbus_record {
  uint64_t sequence;
  int64_t timestamp_ns;
  uint64_t lost_before;
  uint32_t offset;       /* the payload: buffer + offset (8-byte aligned), `length` bytes */
  uint32_t length;
  uint32_t key_offset;   /* the key: buffer + key_offset, right after the payload */
  uint16_t key_length;
  uint16_t message_type;
} shmbus_record;

/* Copies up to max_records records into `buffer` and describes each in records[i]. The buffer
 * must hold at least one record of the channel's max_message (rounded up to 8 bytes): each
 * record is polled only when the space left is sure to hold it, so none is ever consumed without
 * being copied. Hot path: no allocation, lock or system call. Returns how many records were
 * copied, or -ENOBUFS (buffer too small), -ENOTCONN, -EBADMSG, -EINVAL. The copies are the
 * caller's: valid until it overwrites them. Offsets are 32-bit: at most 4 GiB of the buffer is
 * used. */
int64_t shmbus_poll_copy(shmbus_subscriber* subscriber, void* buffer, size_t buffer_size,
                         shmbus_record* records, size_t max_records);

/* Waits until a record may be ready: spins for spin_ns, then sleeps on a futex (a system call:
 * not a hot-path call). 0 when something may be ready, -ETIMEDOUT. */
int shmbus_wait(shmbus_subscriber* subscriber, int64_t timeout_ns, int64_t spin_ns);

/* Manual release (options.manual_release): tells the producers this subscriber is done with
 * every record delivered so far. A few stores; call it from the thread that polls. */
int shmbus_release(shmbus_subscriber* subscriber);

enum {
  SHMBUS_SUBSCRIBER_OK = 0,
  SHMBUS_SUBSCRIBER_CORRUPT = 1,
  SHMBUS_SUBSCRIBER_EVICTED = 2,
  /* spill: the journal could not provide the next sequence; it skipped ahead as a drop
     subscriber does (lost_before counts it) and polling goes on. */
  SHMBUS_SUBSCRIBER_JOURNAL_UNAVAILABLE = 3
};

/* This subscriber's own counters, read without any system call. */
typedef struct shmbus_subscriber_counters {
  uint64_t next_sequence; /* the sequence expected next */
  uint64_t received;      /* records delivered */
  uint64_t lost;          /* sequences lost (drop policy lapped, abandoned claims) */
  uint64_t filtered;      /* records the filter skipped (not received, not lost) */
  uint64_t spilled;       /* of received, how many came from the journal (spill) */
  int status;             /* SHMBUS_SUBSCRIBER_* */
  int catching_up;        /* spill: reading from the journal right now */
} shmbus_subscriber_counters;

int shmbus_subscriber_counters_get(const shmbus_subscriber* subscriber,
                                   shmbus_subscriber_counters* out);
/* The subscriber's last error (why it is corrupt, evicted, or the journal unavailable), ""
 * if none: valid until the next call on the subscriber. */
const char* shmbus_subscriber_error(const shmbus_subscriber* subscriber);

/* ---- Statistics ----------------------------------------------------------------------------- */

/* How a subscriber is doing (`shmbus stat`'s words). */
enum {
  SHMBUS_STATE_ALIVE = 0,
  SHMBUS_STATE_LAGGING = 1,
  SHMBUS_STATE_LAPPED = 2,
  SHMBUS_STATE_DEAD = 3,
  SHMBUS_STATE_EVICTED = 4,
  SHMBUS_STATE_DETACHED = 5
};

/* docs/observability.md documents each field (include/shmbus/stats.hpp has the C++ structs). */
typedef struct shmbus_subscriber_stats {
  uint32_t slot;
  const char* name; /* "" for an anonymous subscriber */
  uint32_t pid;
  int alive;
  int policy; /* SHMBUS_POLICY_* */
  int state;  /* SHMBUS_STATE_* */
  int64_t attached_ns;
  int64_t heartbeat_ns;
  uint64_t position;
  uint64_t next_sequence;
  uint64_t lag_messages;
  uint64_t lag_bytes;
  uint64_t received;
  uint64_t lost;
  uint64_t spilled;
  uint64_t evictions;
  int has_latency; /* it records a latency histogram; then: */
  uint64_t latency_count;
  uint64_t latency_p50_ns;
  uint64_t latency_p99_ns;
  uint64_t latency_max_ns;
} shmbus_subscriber_stats;

typedef struct shmbus_producer_stats {
  uint32_t slot;
  uint32_t pid;
  int alive;
  int claim_in_flight;
  int64_t attached_ns;
  uint64_t published;
  uint64_t published_bytes;
} shmbus_producer_stats;

typedef struct shmbus_journal_stats {
  uint32_t pid;
  int alive;
  const char* dir;
  uint64_t written_sequence;
  uint64_t durable_sequence;
  int64_t heartbeat_ns;
} shmbus_journal_stats;

typedef struct shmbus_channel_stats {
  const char* name;
  uint64_t incarnation;
  uint64_t capacity;
  uint32_t max_message;
  int single_producer;
  uint32_t subscriber_slots;
  uint32_t producer_slots;
  int64_t created_ns;
  uint32_t creator_pid;
  int creator_alive;
  uint64_t head_position;
  uint64_t head_sequence;
  uint64_t published_messages;
  uint64_t published_bytes;
  uint64_t back_pressure_events;
  uint64_t evictions;
  uint64_t abandoned_repaired;
  uint32_t corrupt_slots;
  int abandoned;
  int64_t sampled_ns;
  int64_t sampled_monotonic_ns;
  size_t producer_count;
  const shmbus_producer_stats* producers;     /* producer_count entries */
  size_t subscriber_count;
  const shmbus_subscriber_stats* subscribers; /* subscriber_count entries, by slot */
  const shmbus_journal_stats* journal;        /* NULL: the channel never had a journaler */
} shmbus_channel_stats;

/* Reads a channel's statistics from outside (read_channel_stats: read-only, perturbs nothing).
 * *out points at a snapshot owned by the library, every string and array in it included, valid
 * until shmbus_channel_stats_free(*out). Not a hot-path call (it reads /proc). Thread-safe.
 * Errors: -ENOENT, -EACCES, -EPROTO, -EBADMSG, -EINVAL. */
int shmbus_channel_stats_read(const char* channel, shmbus_channel_stats** out);
void shmbus_channel_stats_free(shmbus_channel_stats* stats); /* NULL is ignored */

/* ---- Journaling and journal reading --------------------------------------------------------- */

/* A journaler (the library's Journaler, what `shmbus record` runs) on the caller's thread: it
 * attaches to `channel` as a lossless named subscriber and writes every record to `dir`. */
typedef struct shmbus_journaler shmbus_journaler;

typedef struct shmbus_journaler_options {
  const char* name;        /* the subscriber name a restart resumes under ("journal") */
  uint64_t segment_bytes;  /* roll to a new segment file past this size (256 MiB) */
  int lossy;               /* nonzero: drop policy, gap records instead of gating (0) */
  int64_t open_timeout_ms; /* waiting for the channel to exist (2000) */
} shmbus_journaler_options;

void shmbus_journaler_options_init(shmbus_journaler_options* options);
/* Recovers `dir` (creating it if needed) and attaches to `channel`. options NULL: the defaults.
 * Errors: -ENOENT, -EACCES, -EBUSY (the channel has a journaler), -EBADMSG, -EIO... */
int shmbus_journaler_open(const char* channel, const char* dir,
                          const shmbus_journaler_options* options, shmbus_journaler** out);
/* One step: writes what the channel has; waits up to idle_wait_ms when there was nothing.
 * Returns the number of data records appended, or a negative errno (a hard error). */
int64_t shmbus_journaler_step(shmbus_journaler* journaler, int64_t idle_wait_ms);
/* Waits until everything appended is written. 0, -ETIMEDOUT, or the write's error. */
int shmbus_journaler_drain(shmbus_journaler* journaler, int64_t timeout_ms);
/* Drains (bounded), releases what was written and unregisters. NULL is ignored. */
void shmbus_journaler_close(shmbus_journaler* journaler);

/* A reader of a journal directory: seek by sequence or time, then read records in order. */
typedef struct shmbus_journal_reader shmbus_journal_reader;

enum {
  SHMBUS_JOURNAL_DATA = 1, /* a message: sequence, publish time, payload, key, type */
  SHMBUS_JOURNAL_GAP = 2   /* gap_count sequences from `sequence` on were lost */
};

typedef struct shmbus_journal_record {
  int type;               /* SHMBUS_JOURNAL_* */
  uint64_t sequence;      /* data: its sequence; gap: the first one lost */
  int64_t timestamp_ns;   /* data: publish time; gap: when the loss was seen */
  const void* payload;    /* data only; valid until the next call on the reader */
  uint32_t length;
  uint16_t key_length;
  uint16_t message_type;
  const void* key;        /* valid until the next call on the reader */
  uint64_t gap_count;     /* gap only */
  uint64_t offset;        /* byte offset of the record in its segment file */
  uint32_t segment;       /* index of its segment file, oldest first */
} shmbus_journal_record;

/* Opens `dir` (a directory with no segment is an empty journal). -ENOENT, -EACCES, -EINVAL. */
int shmbus_journal_open(const char* dir, shmbus_journal_reader** out);
void shmbus_journal_close(shmbus_journal_reader* reader); /* NULL is ignored */
/* The first sequence still retained (0 for an empty journal). */
uint64_t shmbus_journal_first_sequence(const shmbus_journal_reader* reader);
/* Positions the reader on the record holding `sequence` (a gap record if it was lost); before the
 * first retained: on the first record; past the last: at the end. 0 or a negative errno. */
int shmbus_journal_seek_sequence(shmbus_journal_reader* reader, uint64_t sequence);
/* Positions the reader on the first data record whose timestamp is >= time_ns. */
int shmbus_journal_seek_time(shmbus_journal_reader* reader, int64_t time_ns);
/* Reads the next record into *out: 1, or 0 at the end (call shmbus_journal_refresh to see what
 * a journaler appended since), or -EBADMSG when the next record is damaged (the message names
 * the segment file, the offset and the sequence expected; the reader stays before it; a read
 * error of the file is reported so too, with the system's text). */
int shmbus_journal_next(shmbus_journal_reader* reader, shmbus_journal_record* out);
/* After -EBADMSG: moves past the damage. 1 if something was skipped, 0 if not. */
int shmbus_journal_skip_damage(shmbus_journal_reader* reader);
/* Re-lists the directory keeping the position. 0 or a negative errno. */
int shmbus_journal_refresh(shmbus_journal_reader* reader);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* SHMBUS_SHMBUS_H */
