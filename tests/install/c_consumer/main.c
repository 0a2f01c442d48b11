/* A C program built against the installed package (tests/install/install_example.sh): checks that
 * it runs with the library it was compiled for, publishes records through the C API and reads
 * them back, by sequence and content. Exits 0 when every check passed. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <shmbus/shmbus.h>

struct expect {
  uint64_t next;
  int bad;
};

static void on_message(const shmbus_message* m, void* context) {
  struct expect* e = (struct expect*)context;
  char text[32];
  snprintf(text, sizeof text, "record %llu", (unsigned long long)m->sequence);
  if (m->sequence != e->next || m->length != strlen(text) ||
      memcmp(m->payload, text, m->length) != 0) {
    ++e->bad;
  }
  ++e->next;
}

int main(void) {
  int major = 0, minor = 0;
  shmbus_version(&major, &minor, NULL);
  if (shmbus_c_abi_version() != SHMBUS_C_ABI_VERSION || major != SHMBUS_VERSION_MAJOR ||
      minor != SHMBUS_VERSION_MINOR) {
    fprintf(stderr, "compiled for shmbus %s (C ABI %d), running with %s (C ABI %d)\n",
            SHMBUS_VERSION_STRING, SHMBUS_C_ABI_VERSION, shmbus_version_string(),
            shmbus_c_abi_version());
    return 1;
  }
  char channel[64];
  snprintf(channel, sizeof channel, "install.c.%ld", (long)getpid());
  shmbus_publisher* publisher = NULL;
  shmbus_subscriber* subscriber = NULL;
  shmbus_subscriber_options options;
  shmbus_subscriber_options_init(&options);
  options.start = SHMBUS_START_EARLIEST;
  if (shmbus_publisher_open(channel, NULL, &publisher) != 0 ||
      shmbus_subscriber_open(channel, &options, &subscriber) != 0) {
    fprintf(stderr, "c_consumer: %s\n", shmbus_last_error());
    return 1;
  }
  for (uint64_t s = 1; s <= 100; ++s) {
    char text[32];
    snprintf(text, sizeof text, "record %llu", (unsigned long long)s);
    if (shmbus_publish(publisher, text, (uint32_t)strlen(text), NULL, 1000000000) != 0) {
      fprintf(stderr, "c_consumer: %s\n", shmbus_last_error());
      return 1;
    }
  }
  struct expect e = {1, 0};
  while (shmbus_poll(subscriber, on_message, &e, 64) > 0) {
  }
  shmbus_subscriber_close(subscriber);
  shmbus_publisher_close(publisher);
  const int removed = shmbus_channel_remove(channel);
  if (e.next != 101 || e.bad != 0 || removed != 0) {
    fprintf(stderr, "c_consumer: read up to %llu, %d wrong, remove %d\n",
            (unsigned long long)e.next - 1, e.bad, removed);
    return 1;
  }
  printf("c_consumer: shmbus %s, 100 records through the C API\n", shmbus_version_string());
  return 0;
}
