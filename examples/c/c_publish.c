/* Publishes quotes to a channel through shmbus's C API, written in place (claim, fill, commit),
 * with the symbol as the record's key and message type 1.
 *
 *   c_publish CHANNEL COUNT
 *
 * Creates the channel if needed (1 MiB ring). Exits 0 once every quote is committed. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <shmbus/shmbus.h>

#include "quote.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s CHANNEL COUNT\n", argv[0]);
    return 2;
  }
  const char* channel = argv[1];
  const uint64_t count = strtoull(argv[2], NULL, 10);
  if (shmbus_c_abi_version() != SHMBUS_C_ABI_VERSION) {
    fprintf(stderr, "c_publish: built for C ABI %d, the library has %d\n", SHMBUS_C_ABI_VERSION,
            shmbus_c_abi_version());
    return 1;
  }

  shmbus_channel_options options;
  shmbus_channel_options_init(&options);
  options.capacity = 1 << 20;
  options.max_message = 4096;
  options.accept_existing = 1; /* publish to the channel as it is if it exists */
  shmbus_publisher* publisher = NULL;
  int rc = shmbus_publisher_open(channel, &options, &publisher);
  if (rc != 0) {
    fprintf(stderr, "c_publish: %s (%s)\n", shmbus_last_error(), strerror(-rc));
    return 1;
  }

  const shmbus_tag tag = {"EURUSD", 6, 1};
  for (uint64_t n = 1; n <= count; ++n) {
    shmbus_claim_ticket claim;
    /* Waits up to a second while a block subscriber holds the ring full. */
    rc = shmbus_claim(publisher, sizeof(quote), &tag, 1000000000, &claim);
    if (rc != 0) {
      fprintf(stderr, "c_publish: quote %llu: %s\n", (unsigned long long)n, shmbus_last_error());
      shmbus_publisher_close(publisher);
      return 1;
    }
    quote q;
    quote_make(n, &q);
    memcpy(claim.data, &q, sizeof q); /* the ring's bytes are only byte-aligned for the reader */
    rc = shmbus_commit(publisher, &claim);
    if (rc != 0) {
      fprintf(stderr, "c_publish: commit of quote %llu: %s\n", (unsigned long long)n,
              shmbus_last_error());
      shmbus_publisher_close(publisher);
      return 1;
    }
  }
  printf("c_publish: %llu quotes published to %s\n", (unsigned long long)count, channel);
  shmbus_publisher_close(publisher);
  return 0;
}
