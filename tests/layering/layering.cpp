#include "tests/layering/layering.hpp"

#include <algorithm>
#include <array>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <set>

namespace shmbus::layering {
namespace {

namespace fs = std::filesystem;

// The floor a path (relative to the root) belongs to, or nothing when it is not one we check.
std::optional<std::string> floor_of(const std::string& rel) {
  if (rel == "include/shmbus/result.hpp") return "result";
  if (rel == "include/shmbus/journal_reader.hpp" || rel == "include/shmbus/journal_options.hpp") {
    return "journal_api";
  }
  static const std::array<std::pair<const char*, const char*>, 10> kDirs{{
      {"core/", "core"},
      {"journal/", "journal"},
      {"include/shmbus/", "public"},
      {"ipc/", "ipc"},
      {"capi/", "capi"},
      {"bridge/", "bridge"},
      {"bench/", "bench"},
      {"tools/", "tools"},
      {"tests/", "tests"},
      {"examples/", "tests"},
  }};
  for (const auto& [prefix, floor] : kDirs) {
    if (rel.starts_with(prefix)) return floor;
  }
  return std::nullopt;
}

const std::map<std::string, std::set<std::string>>& allowed() {
  static const std::map<std::string, std::set<std::string>> kAllowed{
      {"core", {"core"}},
      {"result", {"result"}},
      {"journal_api", {"result", "journal_api"}},
      {"journal", {"core", "result", "journal_api", "journal"}},
      {"public", {"core", "result", "journal_api", "public"}},
      {"ipc", {"core", "result", "journal_api", "journal", "public", "ipc"}},
      {"capi", {"core", "result", "journal_api", "journal", "public", "ipc", "capi"}},
      {"bridge", {"core", "result", "journal_api", "journal", "public", "ipc", "bridge"}},
      {"bench", {"core", "result", "journal_api", "journal", "public", "ipc", "bench"}},
      {"tools",
       {"core", "result", "journal_api", "journal", "public", "ipc", "bridge", "bench", "tools"}},
  };
  return kAllowed;
}

std::string join(const std::set<std::string>& floors) {
  std::string out;
  for (const auto& f : floors) out += (out.empty() ? "" : ", ") + f;
  return out;
}

bool is_source(const fs::path& p) {
  const auto ext = p.extension().string();
  return ext == ".hpp" || ext == ".cpp" || ext == ".h" || ext == ".cc";
}

// Where `name`, included from `file`, lies in the tree (relative to the root), if it does.
std::optional<std::string> resolve(const fs::path& root, const fs::path& file,
                                   const std::string& name) {
  for (const fs::path& base : {file.parent_path(), root, root / "include"}) {
    std::error_code ec;
    const fs::path candidate = fs::weakly_canonical(base / name, ec);
    if (!ec && fs::is_regular_file(candidate, ec)) {
      const std::string rel = candidate.lexically_relative(root).generic_string();
      if (!rel.starts_with("..")) return rel;
    }
  }
  return std::nullopt;
}

}  // namespace

std::vector<Violation> check_tree(const fs::path& root_in) {
  const fs::path root = fs::weakly_canonical(root_in);
  static const std::regex kInclude(R"(^\s*#\s*include\s*["<]([^">]+)[">])");
  std::vector<Violation> out;
  for (const char* dir :
       {"core", "journal", "ipc", "capi", "bridge", "include", "bench", "tools"}) {
    std::error_code ec;
    if (!fs::is_directory(root / dir, ec)) continue;
    std::vector<fs::path> files;
    for (const auto& entry : fs::recursive_directory_iterator(root / dir, ec)) {
      if (entry.is_regular_file() && is_source(entry.path())) files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
    for (const fs::path& file : files) {
      const std::string rel = file.lexically_relative(root).generic_string();
      const auto floor = floor_of(rel);
      if (!floor || !allowed().contains(*floor)) continue;
      const std::set<std::string>& may = allowed().at(*floor);
      std::ifstream in(file);
      std::string text;
      int line = 0;
      while (std::getline(in, text)) {
        ++line;
        std::smatch m;
        if (!std::regex_search(text, m, kInclude)) continue;
        const auto target = resolve(root, file, m[1].str());
        if (!target) continue;
        const auto target_floor = floor_of(*target);
        if (!target_floor || may.contains(*target_floor)) continue;
        out.push_back(Violation{
            rel, line, *target,
            rel + ":" + std::to_string(line) + ": includes " + *target + " (floor " +
                *target_floor + ") from floor " + *floor + ", which may include only " +
                join(may)});
      }
    }
  }
  return out;
}

}  // namespace shmbus::layering
