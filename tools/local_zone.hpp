// The local time zone of the shmbus command, from the tz database (libhowardhinnant-date, reading
// the system's /usr/share/zoneinfo): the zone $TZ names, as glibc reads it ("Europe/London",
// ":Europe/London", "/usr/share/zoneinfo/Europe/London"; set but empty means UTC), or else the
// system's zone (/etc/localtime), or UTC when the system names none.
// Only the .cpp files that convert times include this header (date/tz.h is large).
#pragma once

#include <chrono>
#include <string>

#include <date/tz.h>

namespace shmbus::tools {

struct LocalZone {
  const date::time_zone* zone = nullptr;  // nullptr: `problem` says why
  std::string problem;                    // e.g. TZ names no zone of the tz database
};

// The zone for the current value of $TZ. Looked up again only when $TZ changes (tests set it),
// so per-record formatting costs one getenv and a string compare.
const LocalZone& local_zone();

// A UTC offset as ISO-8601 writes it: "+01:00", "-04:00", "+05:30" (seconds are dropped).
std::string format_utc_offset(std::chrono::seconds offset);

}  // namespace shmbus::tools
