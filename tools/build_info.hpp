// What `shmbus --version` and `shmbus version` report: the library version, the versions of the
// formats other processes and files must share (a process of another layout version cannot open a
// channel; a journal of another format version cannot be read), and how this binary was built.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace shmbus::tools {

struct BuildInfo {
  std::string_view version;              // the CMake project version, "0.1.0"
  std::uint32_t ring_layout_version;     // core/layout.hpp kLayoutVersion
  std::uint32_t control_layout_version;  // ipc/control_layout.hpp kControlVersion
  std::uint32_t journal_format_version;  // journal/format.hpp kFormatVersion
  std::string_view compiler;             // "GNU 12.2.0"
  std::string_view build_type;           // CMAKE_BUILD_TYPE, "Release"
  std::string_view sanitizer;            // SHMBUS_SANITIZE, or "none"
  std::string_view git_commit;           // HEAD when CMake configured the build, or "unknown"
  std::string_view build_date;           // UTC date of the configure (SOURCE_DATE_EPOCH if set)
};

// This binary's values, filled in by CMake (tools/build_info.cpp.in).
BuildInfo build_info() noexcept;

// "shmbus 0.1.0" and two more lines: the layouts, the build. help2man reads the first line.
std::string version_text(const BuildInfo& info);
// One JSON object whose fields are BuildInfo's (docs/observability.md, "Conventions").
std::string version_json(const BuildInfo& info);

}  // namespace shmbus::tools
