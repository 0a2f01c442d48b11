/* The C side of tests/capi/capi_multiprocess_test.cpp: a process that uses only the C API.
 *
 *   shmbus_capi_peer publish CHANNEL COUNT
 *       claims, writes (capi_payload.h, by the claimed sequence) and commits COUNT records.
 *   shmbus_capi_peer subscribe CHANNEL COUNT POLICY LIVENESS_MS
 *       opens a subscriber (block, drop or spill; from the earliest record), says READY, and
 *       checks every record by sequence and content until it has COUNT or nothing came for 5 s.
 *
 * It ends with one line "RESULT key=value ..." on stdout (errors=0 when every check passed) and
 * exits 0 only when its work is done without error. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shmbus/shmbus.h"
#include "tests/capi/capi_payload.h"

static int publish(const char* channel, uint64_t count) {
  shmbus_publisher* publisher = NULL;
  int rc = shmbus_publisher_open(channel, NULL, &publisher);
  if (rc != 0) {
    printf("RESULT role=publish published=0 errors=1 rc=%d\n", rc);
    fprintf(stderr, "capi_peer: %s\n", shmbus_last_error());
    return 1;
  }
  uint64_t published = 0, last = 0;
  for (; published < count; ++published) {
    shmbus_claim_ticket claim;
    /* The length depends on the sequence: this peer is the channel's only producer, so the
       next sequence is the one after its last (checked below). */
    rc = shmbus_claim(publisher, capi_payload_length(last + 1), NULL, 5000000000LL, &claim);
    if (rc != 0) break;
    if (claim.sequence != last + 1) { /* another producer interleaved: this peer is alone */
      shmbus_abort(publisher, &claim);
      rc = -EPROTO;
      break;
    }
    capi_payload_fill(claim.sequence, claim.data);
    rc = shmbus_commit(publisher, &claim);
    if (rc != 0) break;
    last = claim.sequence;
  }
  printf("RESULT role=publish published=%llu last=%llu errors=%d rc=%d\n",
         (unsigned long long)published, (unsigned long long)last, rc != 0, rc);
  if (rc != 0) fprintf(stderr, "capi_peer: %s\n", shmbus_last_error());
  fflush(stdout);
  shmbus_publisher_close(publisher);
  return rc != 0;
}

struct checked {
  uint64_t next;
  uint64_t received;
  uint64_t lost;
  uint64_t errors;
};

static void check(const shmbus_message* m, void* context) {
  struct checked* c = (struct checked*)context;
  if (m->sequence != c->next + m->lost_before ||
      !capi_payload_matches(m->sequence, m->payload, m->length) ||
      !capi_tag_matches(m->sequence, m->key, m->key_length, m->message_type)) {
    if (c->errors++ == 0) {
      fprintf(stderr, "capi_peer: record %llu (expected %llu) is wrong\n",
              (unsigned long long)m->sequence, (unsigned long long)c->next);
    }
  }
  c->next = m->sequence + 1;
  c->lost += m->lost_before;
  ++c->received;
}

static int subscribe(const char* channel, uint64_t count, const char* policy, long liveness_ms) {
  shmbus_subscriber_options options;
  shmbus_subscriber_options_init(&options);
  options.policy = strcmp(policy, "drop") == 0    ? SHMBUS_POLICY_DROP
                   : strcmp(policy, "spill") == 0 ? SHMBUS_POLICY_SPILL
                                                  : SHMBUS_POLICY_BLOCK;
  options.start = SHMBUS_START_EARLIEST;
  options.liveness_timeout_ns = (int64_t)liveness_ms * 1000000;
  shmbus_subscriber* subscriber = NULL;
  const int rc = shmbus_subscriber_open(channel, &options, &subscriber);
  if (rc != 0) {
    printf("RESULT role=subscribe received=0 errors=1 rc=%d\n", rc);
    fprintf(stderr, "capi_peer: %s\n", shmbus_last_error());
    return 1;
  }
  printf("READY\n");
  fflush(stdout);
  struct checked c = {1, 0, 0, 0};
  int idle = 0;
  int64_t n = 0;
  while (c.received + c.lost < count && idle < 50) {
    n = shmbus_poll(subscriber, check, &c, 256);
    if (n < 0) break;
    if (n == 0) idle = shmbus_wait(subscriber, 100000000, 20000) == 0 ? 0 : idle + 1;
  }
  printf("RESULT role=subscribe received=%llu lost=%llu errors=%llu last=%llu rc=%lld\n",
         (unsigned long long)c.received, (unsigned long long)c.lost, (unsigned long long)c.errors,
         (unsigned long long)(c.next - 1), (long long)(n < 0 ? n : 0));
  fflush(stdout);
  shmbus_subscriber_close(subscriber);
  return c.errors != 0 || n < 0 || c.received + c.lost < count;
}

int main(int argc, char** argv) {
  if (argc == 4 && strcmp(argv[1], "publish") == 0) {
    return publish(argv[2], strtoull(argv[3], NULL, 10));
  }
  if (argc == 6 && strcmp(argv[1], "subscribe") == 0) {
    return subscribe(argv[2], strtoull(argv[3], NULL, 10), argv[4], strtol(argv[5], NULL, 10));
  }
  fprintf(stderr,
          "usage: %s publish CHANNEL COUNT | subscribe CHANNEL COUNT POLICY LIVENESS_MS\n",
          argv[0]);
  return 2;
}
