#include "tests/layering/layering.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

namespace shmbus::layering {
namespace {

namespace fs = std::filesystem;

// A scratch source tree, removed at the end of the test.
class Tree {
 public:
  Tree() : root_(fs::temp_directory_path() / ("shmbus-layering-" + std::to_string(::getpid()))) {
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  ~Tree() { fs::remove_all(root_); }
  void write(const std::string& rel, const std::string& text) {
    fs::create_directories((root_ / rel).parent_path());
    std::ofstream(root_ / rel) << text;
  }
  void append(const std::string& rel, const std::string& text) {
    std::ofstream(root_ / rel, std::ios::app) << text;
  }
  // The real tree's floors, copied in.
  void copy_source() {
    for (const char* dir : {"core", "journal", "ipc", "bridge", "include", "bench", "tools"}) {
      if (!fs::exists(fs::path(SHMBUS_SOURCE_DIR) / dir)) continue;
      fs::copy(fs::path(SHMBUS_SOURCE_DIR) / dir, root_ / dir, fs::copy_options::recursive);
    }
  }
  const fs::path& root() const { return root_; }

 private:
  fs::path root_;
};

// The one violation `tree` holds; a failure (and an empty Violation) when it holds another number.
Violation only_violation(const Tree& tree) {
  const auto found = check_tree(tree.root());
  EXPECT_EQ(found.size(), 1u);
  for (const Violation& v : found) std::cerr << "  found: " << v.message << "\n";
  return found.size() == 1 ? found[0] : Violation{};
}

TEST(Layering, TheSourceTreeKeepsItsFloors) {
  for (const Violation& v : check_tree(SHMBUS_SOURCE_DIR)) ADD_FAILURE() << v.message;
}

TEST(Layering, AnIncludeFromCoreIntoIpcPlantedInTheRealTreeIsReported) {
  Tree tree;
  tree.copy_source();
  ASSERT_TRUE(check_tree(tree.root()).empty());
  tree.append("core/ring.hpp", "#include \"ipc/channel.hpp\"\n");
  const Violation v = only_violation(tree);
  EXPECT_EQ(v.file, "core/ring.hpp");
  EXPECT_EQ(v.included, "ipc/channel.hpp");
  EXPECT_NE(v.message.find("from floor core, which may include only core"), std::string::npos)
      << v.message;
}

TEST(Layering, TheJournalMayUseResultButNotTheWholeApi) {
  Tree tree;
  tree.write("include/shmbus/result.hpp", "#pragma once\n");
  tree.write("include/shmbus/shmbus.hpp", "#pragma once\n#include \"result.hpp\"\n");
  tree.write("journal/writer.cpp", "#include \"shmbus/result.hpp\"\n#include <vector>\n");
  EXPECT_TRUE(check_tree(tree.root()).empty());
  tree.write("journal/reader.cpp", "#include <shmbus/shmbus.hpp>\n");
  const Violation v = only_violation(tree);
  EXPECT_EQ(v.file, "journal/reader.cpp");
  EXPECT_EQ(v.line, 1);
  EXPECT_EQ(v.included, "include/shmbus/shmbus.hpp");
}

TEST(Layering, TheJournalMayNotReachTheJournalerAboveIt) {
  Tree tree;
  tree.write("include/shmbus/journaler.hpp", "#pragma once\n");
  tree.write("journal/retention.cpp", "// retention\n\n#include \"shmbus/journaler.hpp\"\n");
  const Violation v = only_violation(tree);
  EXPECT_EQ(v.file, "journal/retention.cpp");
  EXPECT_EQ(v.line, 3);
}

TEST(Layering, TheJournalIncludesItsPublicApiWhichMayNotReachBackIntoTheJournal) {
  Tree tree;
  tree.write("include/shmbus/journal_reader.hpp", "#pragma once\n#include \"journal/format.hpp\"\n");
  tree.write("journal/format.hpp", "#pragma once\n#include \"shmbus/journal_reader.hpp\"\n");
  const Violation v = only_violation(tree);
  EXPECT_EQ(v.file, "include/shmbus/journal_reader.hpp");
  EXPECT_EQ(v.included, "journal/format.hpp");
}

TEST(Layering, ASiblingIncludeResolvesBesideItsFile) {
  Tree tree;
  tree.write("core/ring.hpp", "#include \"layout.hpp\"\n");
  tree.write("core/layout.hpp", "#pragma once\n");
  tree.write("ipc/layout.hpp", "#pragma once\n");  // the same name higher up is not reached
  EXPECT_TRUE(check_tree(tree.root()).empty());
}

TEST(Layering, ThePublicHeadersMayNotReachIpc) {
  Tree tree;
  tree.write("ipc/channel.hpp", "#pragma once\n");
  tree.write("include/shmbus/subscriber.hpp", "#include \"ipc/channel.hpp\"\n");
  EXPECT_EQ(only_violation(tree).file, "include/shmbus/subscriber.hpp");
}

TEST(Layering, ToolsMayUseEveryFloorButNotTests) {
  Tree tree;
  tree.write("ipc/channel.hpp", "#pragma once\n");
  tree.write("tests/support/process.hpp", "#pragma once\n");
  tree.write("tools/cmd_ls.cpp", "#include \"ipc/channel.hpp\"\n");
  EXPECT_TRUE(check_tree(tree.root()).empty());
  tree.write("tools/cmd_stat.cpp", "#include \"tests/support/process.hpp\"\n");
  EXPECT_EQ(only_violation(tree).file, "tools/cmd_stat.cpp");
}

TEST(Layering, TheBridgeSitsBetweenIpcAndTools) {
  Tree tree;
  tree.write("ipc/channel.hpp", "#pragma once\n");
  tree.write("bridge/record_headers.hpp", "#include \"ipc/channel.hpp\"\n");
  tree.write("tools/cmd_bridge.cpp", "#include \"bridge/record_headers.hpp\"\n");
  EXPECT_TRUE(check_tree(tree.root()).empty());
  tree.write("ipc/subscriber.cpp", "#include \"bridge/record_headers.hpp\"\n");
  EXPECT_EQ(only_violation(tree).file, "ipc/subscriber.cpp");
  tree.write("ipc/subscriber.cpp", "\n");
  tree.write("bridge/bridge_out.cpp", "#include \"tools/commands.hpp\"\n");
  tree.write("tools/commands.hpp", "#pragma once\n");
  EXPECT_EQ(only_violation(tree).file, "bridge/bridge_out.cpp");
}

}  // namespace
}  // namespace shmbus::layering
