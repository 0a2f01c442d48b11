/* The records the C API tests publish, by sequence: a length and a byte pattern that any process,
 * C or C++, can recompute from the sequence alone, so a record received anywhere is checked by
 * sequence and content. Every 7th record carries a key ("key-<sequence % 3>") and a message type
 * (sequence % 5 + 1). */
#ifndef SHMBUS_TESTS_CAPI_PAYLOAD_H
#define SHMBUS_TESTS_CAPI_PAYLOAD_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

static inline uint32_t capi_payload_length(uint64_t sequence) {
  return (uint32_t)(8 + sequence % 57);
}

static inline uint8_t capi_payload_byte(uint64_t sequence, uint32_t i) {
  return (uint8_t)(sequence * 131u + i * 7u + 3u);
}

static inline void capi_payload_fill(uint64_t sequence, void* out) {
  uint8_t* bytes = (uint8_t*)out;
  for (uint32_t i = 0; i < capi_payload_length(sequence); ++i) {
    bytes[i] = capi_payload_byte(sequence, i);
  }
}

/* 1 when `payload` of `length` bytes is what sequence `sequence` carries. */
static inline int capi_payload_matches(uint64_t sequence, const void* payload, uint32_t length) {
  const uint8_t* bytes = (const uint8_t*)payload;
  if (length != capi_payload_length(sequence)) return 0;
  for (uint32_t i = 0; i < length; ++i) {
    if (bytes[i] != capi_payload_byte(sequence, i)) return 0;
  }
  return 1;
}

static inline int capi_is_tagged(uint64_t sequence) { return sequence % 7 == 0; }

/* Writes the key of `sequence` into key[8]; returns its length. */
static inline uint32_t capi_key(uint64_t sequence, char key[8]) {
  return (uint32_t)snprintf(key, 8, "key-%u", (unsigned)(sequence % 3));
}

static inline uint16_t capi_message_type(uint64_t sequence) {
  return (uint16_t)(sequence % 5 + 1);
}

/* 1 when a record's key and type are what `sequence` carries (none for an untagged one). */
static inline int capi_tag_matches(uint64_t sequence, const void* key, uint32_t key_length,
                                   uint16_t message_type) {
  char expected[8];
  if (!capi_is_tagged(sequence)) return key_length == 0 && message_type == 0;
  const uint32_t n = capi_key(sequence, expected);
  return key_length == n && memcmp(key, expected, n) == 0 &&
         message_type == capi_message_type(sequence);
}

#endif /* SHMBUS_TESTS_CAPI_PAYLOAD_H */
