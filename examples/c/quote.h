/* The record the two C examples exchange: a quote, written in place into the ring by c_publish
 * and read by c_tail. Plain data, the same layout in both programs. */
#ifndef SHMBUS_EXAMPLES_C_QUOTE_H
#define SHMBUS_EXAMPLES_C_QUOTE_H

#include <stdint.h>

typedef struct quote {
  uint64_t number;   /* 1, 2, 3... as published */
  int64_t bid_e8;    /* price * 1e8 */
  int64_t ask_e8;
  uint32_t bid_size;
  uint32_t ask_size;
  char symbol[8];
} quote;

/* The quote c_publish sends as number n, so that c_tail can check every field. */
static inline void quote_make(uint64_t n, quote* q) {
  q->number = n;
  q->bid_e8 = 108000000 + (int64_t)(n % 1000) * 10;
  q->ask_e8 = q->bid_e8 + 20;
  q->bid_size = (uint32_t)(1000000 + n % 7 * 100000);
  q->ask_size = (uint32_t)(2000000 - n % 5 * 100000);
  for (int i = 0; i < 8; ++i) q->symbol[i] = "EURUSD\0\0"[i];
}

#endif /* SHMBUS_EXAMPLES_C_QUOTE_H */
