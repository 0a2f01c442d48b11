/* Follows a channel through shmbus's C API and checks every quote c_publish sent, by number and
 * content; prints the channel's statistics at the end.
 *
 *   c_tail CHANNEL COUNT
 *
 * A block subscriber from the oldest record the ring holds (it waits up to 5 s for the channel to
 * be created). Exits 0 once COUNT quotes arrived intact and in order; 1 on any surprise or when
 * nothing arrives for 5 s. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <shmbus/shmbus.h>

#include "quote.h"

struct tail {
  uint64_t next; /* the quote number expected next */
  uint64_t bad;
};

/* Called for each record during shmbus_poll; m->payload is valid only until it returns. */
static void on_quote(const shmbus_message* m, void* context) {
  struct tail* t = (struct tail*)context;
  quote got, want;
  quote_make(t->next, &want);
  if (m->length != sizeof got || m->key_length != 6 || memcmp(m->key, "EURUSD", 6) != 0 ||
      m->message_type != 1) {
    ++t->bad;
  } else {
    memcpy(&got, m->payload, sizeof got);
    if (memcmp(&got, &want, sizeof got) != 0) ++t->bad;
  }
  ++t->next;
}

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s CHANNEL COUNT\n", argv[0]);
    return 2;
  }
  const char* channel = argv[1];
  const uint64_t count = strtoull(argv[2], NULL, 10);

  shmbus_subscriber_options options;
  shmbus_subscriber_options_init(&options);
  options.policy = SHMBUS_POLICY_BLOCK;
  options.start = SHMBUS_START_EARLIEST;
  options.open_timeout_ms = 5000;
  shmbus_subscriber* subscriber = NULL;
  if (shmbus_subscriber_open(channel, &options, &subscriber) != 0) {
    fprintf(stderr, "c_tail: %s\n", shmbus_last_error());
    return 1;
  }

  struct tail t = {1, 0};
  int idle = 0;
  while (t.next <= count && idle < 50) {
    const int64_t n = shmbus_poll(subscriber, on_quote, &t, 256);
    if (n < 0) {
      fprintf(stderr, "c_tail: %s\n", shmbus_last_error());
      break;
    }
    /* Nothing ready: sleep on the channel's futex up to 100 ms. */
    if (n == 0) idle = shmbus_wait(subscriber, 100000000, 50000) == 0 ? 0 : idle + 1;
  }

  shmbus_subscriber_counters counters;
  shmbus_subscriber_counters_get(subscriber, &counters);
  shmbus_channel_stats* stats = NULL;
  if (shmbus_channel_stats_read(channel, &stats) == 0) {
    printf("c_tail: %s: %llu published, %zu subscriber(s), head sequence %llu\n", stats->name,
           (unsigned long long)stats->published_messages, stats->subscriber_count,
           (unsigned long long)stats->head_sequence);
    shmbus_channel_stats_free(stats);
  }
  shmbus_subscriber_close(subscriber);
  if (t.next != count + 1 || t.bad != 0 || counters.lost != 0) {
    fprintf(stderr, "c_tail: %llu of %llu quotes, %llu wrong, %llu lost\n",
            (unsigned long long)(t.next - 1), (unsigned long long)count,
            (unsigned long long)t.bad, (unsigned long long)counters.lost);
    return 1;
  }
  printf("c_tail: %llu quotes received intact, in order\n", (unsigned long long)count);
  return 0;
}
