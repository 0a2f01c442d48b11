// shmbus --version and shmbus version [--json]: what tools/build_info.hpp describes.
#include <memory>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tools/build_info.hpp"
#include "tools/commands.hpp"
#include "tools/report_output.hpp"

namespace shmbus::tools {

std::string version_text(const BuildInfo& info) {
  return fmt::format(
      "shmbus {}\n"
      "layouts: ring {}, control segment {}, journal format {}\n"
      "build: {} {}, sanitizer {}, commit {}, configured {}\n",
      info.version, info.ring_layout_version, info.control_layout_version,
      info.journal_format_version, info.compiler, info.build_type, info.sanitizer,
      info.git_commit, info.build_date);
}

std::string version_json(const BuildInfo& info) {
  nlohmann::ordered_json doc;
  doc["version"] = info.version;
  doc["ring_layout_version"] = info.ring_layout_version;
  doc["control_layout_version"] = info.control_layout_version;
  doc["journal_format_version"] = info.journal_format_version;
  doc["compiler"] = info.compiler;
  doc["build_type"] = info.build_type;
  doc["sanitizer"] = info.sanitizer;
  doc["git_commit"] = info.git_commit;
  doc["build_date"] = info.build_date;
  return doc.dump();
}

void add_version_command(CLI::App& app) {
  // --version on the top level only: CLI11 prints the text on stdout and exits 0.
  // CLI11 adds the final newline.
  app.set_version_flag("--version",
                       [] {
                         std::string text = version_text(build_info());
                         text.pop_back();
                         return text;
                       },
                       "Print the version, the layout versions and the build, then exit");
  auto json = std::make_shared<bool>(false);
  CLI::App* sub = app.add_subcommand(
      "version", "Print the library version, the shared-memory and journal layout versions and "
                 "how this binary was built");
  sub->add_flag("--json", *json,
                "One JSON object: {version, ring_layout_version, control_layout_version, "
                "journal_format_version, compiler, build_type, sanitizer, git_commit, "
                "build_date}");
  sub->footer("Processes of different ring or control layout versions cannot share a channel; a "
              "journal of another format version cannot be read.\n"
              "Exit: 0 printed; 1 output could not be written; 2 bad arguments.");
  sub->callback([json] {
    const BuildInfo info = build_info();
    const std::string text = *json ? version_json(info) + "\n" : version_text(info);
    const int code = print_report("version", text, stdout);
    if (code != kExitOk) throw CLI::RuntimeError(code);
  });
}

}  // namespace shmbus::tools
