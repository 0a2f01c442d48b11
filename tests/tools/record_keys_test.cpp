// Keys and message types in the command's record formats (tools/format.hpp, record_format.hpp):
// text and JSON lines, raw SBRK frames and JSON lines read back by pub; and end to end through the
// built command: pub --key/--message-type, tail (filters, json, raw) and replay.
#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "journal/writer.hpp"
#include "tests/support/command.hpp"
#include "tests/support/journal_files.hpp"
#include "tests/support/process.hpp"
#include "tools/format.hpp"
#include "tools/record_format.hpp"

namespace {

using namespace shmbus::tools;
using namespace std::chrono_literals;
using shmbus::Message;
using shmbus::test::ChannelGuard;
using shmbus::test::lines_of;
using shmbus::test::RunResult;
using shmbus::test::run_command;
using shmbus::test::unique_channel;
using shmbus::test::with_stderr_captured;

std::vector<std::byte> bytes_of(std::string_view text) {
  const auto* p = reinterpret_cast<const std::byte*>(text.data());
  return {p, p + text.size()};
}
std::string text_of(const std::vector<std::byte>& b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

TEST(RecordKeys, TextLineShowsKeyAndTypeBeforeSizeAndHexWhereTextWouldMislead) {
  const auto payload = bytes_of("hello");
  const auto plain = bytes_of("acct-7");
  const std::string line =
      record_line(Message{3, 0, payload, 0, plain, 12}, RecordFormat::text);
  EXPECT_NE(line.find(" key=acct-7 type=12 size=5 hello"), std::string::npos) << line;
  EXPECT_EQ(record_line(Message{3, 0, payload, 0}, RecordFormat::text).find("key="),
            std::string::npos);
  EXPECT_EQ(key_text(bytes_of("a b")), "0x612062");         // a space would split the field
  EXPECT_EQ(key_text(bytes_of("0x41")), "0x30783431");      // would read as the hex of "A"
  EXPECT_EQ(key_text(bytes_of("\x1b[2J")), "0x1b5b324a");   // a terminal escape
  EXPECT_EQ(key_text(bytes_of("w\xc3\xb6rld")), "w\xc3\xb6rld");
}

TEST(RecordKeys, JsonLineCarriesKeyHexKeyTextAndMessageTypeOnlyWhenPresent) {
  const auto payload = bytes_of("p");
  const auto key = bytes_of("k\"1\\");
  const auto j =
      nlohmann::json::parse(record_line(Message{1, 2, payload, 0, key, 9}, RecordFormat::json));
  EXPECT_EQ(j.at("key"), "k\"1\\");
  EXPECT_EQ(j.at("key_hex"), to_hex(key));
  EXPECT_EQ(j.at("message_type"), 9);
  const auto binary = bytes_of(std::string_view("\x00\xff", 2));
  const auto b =
      nlohmann::json::parse(record_line(Message{1, 2, payload, 0, binary, 0}, RecordFormat::json));
  EXPECT_FALSE(b.contains("key"));
  EXPECT_EQ(b.at("key_hex"), "00ff");
  EXPECT_FALSE(b.contains("message_type"));
  const auto none = nlohmann::json::parse(record_line(Message{1, 2, payload, 0}, RecordFormat::json));
  EXPECT_FALSE(none.contains("key_hex"));
  EXPECT_FALSE(none.contains("message_type"));

  // pub --format json reads them back.
  for (const auto& [line, want_key, want_type] :
       {std::tuple{record_line(Message{1, 2, payload, 0, key, 9}, RecordFormat::json),
                   std::string("k\"1\\"), 9},
        std::tuple{record_line(Message{1, 2, payload, 0, binary, 0}, RecordFormat::json),
                   std::string("\x00\xff", 2), 0},
        std::tuple{std::string(R"({"payload_text":"p","key":"only-text","message_type":65535})"),
                   std::string("only-text"), 65535}}) {
    const auto r = parse_json_record_line(line);
    ASSERT_TRUE(r && *r) << line;
    EXPECT_EQ(text_of((*r)->key), want_key);
    EXPECT_EQ((*r)->message_type, want_type);
    EXPECT_EQ(text_of((*r)->payload), "p");
  }
  for (const char* bad : {R"({"payload_text":"p","key":"a","key_hex":"62"})",
                          R"({"payload_text":"p","key_hex":"6"})",
                          R"({"payload_text":"p","message_type":65536})",
                          R"({"payload_text":"p","key":7})"}) {
    EXPECT_FALSE(parse_json_record_line(bad)) << bad;
  }
}

std::vector<CapturedRecord> read_raw(const std::string& capture, std::uint32_t max_payload,
                                     std::string* error) {
  std::unique_ptr<std::FILE, decltype(&std::fclose)> in(
      fmemopen(const_cast<char*>(capture.data()), capture.size(), "r"), &std::fclose);
  RawRecordReader reader(in.get(), max_payload);
  std::vector<CapturedRecord> records;
  for (CapturedRecord r;;) {
    const CaptureRead read = reader.next(r);
    if (read == CaptureRead::record) {
      records.push_back(r);
      continue;
    }
    *error = read == CaptureRead::end ? "" : reader.error();
    return records;
  }
}

TEST(RecordKeys, RawFramesCarryKeyAndTypeInSbrkFramesAndPlainRecordsStaySbrd) {
  std::string capture;
  append_raw_data(capture, 1, 10, bytes_of("one"), bytes_of("key-1"), 7);
  append_raw_data(capture, 2, 20, bytes_of("two"));
  append_raw_data(capture, 3, 30, bytes_of("three"), {}, 8);
  EXPECT_EQ(capture.substr(0, 8), std::string("SBRK\x0c\0\0\0", 8));  // 4 + 5 + 3
  EXPECT_EQ(capture.substr(kRawHeaderBytes, 4), std::string("\x05\0\x07\0", 4));
  EXPECT_EQ(capture.substr(kRawHeaderBytes + 12, 4), "SBRD");
  std::string error;
  const auto records = read_raw(capture, 64, &error);
  EXPECT_EQ(error, "");
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(text_of(records[0].key), "key-1");
  EXPECT_EQ(records[0].message_type, 7u);
  EXPECT_EQ(text_of(records[0].payload), "one");
  EXPECT_TRUE(records[1].key.empty());
  EXPECT_EQ(records[1].message_type, 0u);
  EXPECT_EQ(text_of(records[1].payload), "two");
  EXPECT_TRUE(records[2].key.empty());
  EXPECT_EQ(records[2].message_type, 8u);
  EXPECT_EQ(text_of(records[2].payload), "three");
}

TEST(RecordKeys, RawSbrkFramesWithImpossibleKeyLengthsAreErrorsNamingTheRecord) {
  auto frame = [](std::uint32_t size, std::uint16_t key_length) {
    std::string f = "SBRK";
    for (int i = 0; i < 4; ++i) f += static_cast<char>((size >> (8 * i)) & 0xff);
    f += std::string(16, '\0');
    f += static_cast<char>(key_length & 0xff);
    f += static_cast<char>(key_length >> 8);
    f += std::string(size >= 2 ? size - 2 : 0, 'x');
    return f.substr(0, kRawHeaderBytes + size);
  };
  std::string error;
  read_raw(frame(3, 0), 64, &error);  // shorter than key length and type
  EXPECT_NE(error.find("less than its 4-byte key length and type"), std::string::npos) << error;
  read_raw(frame(10, 7), 64, &error);  // a 7-byte key in 6 bytes
  EXPECT_NE(error.find("declares a key of 7 bytes"), std::string::npos) << error;
  read_raw(frame(300, 290), 1024, &error);  // above the largest key
  EXPECT_NE(error.find("declares a key of 290 bytes"), std::string::npos) << error;
}

// --- the command end to end ---------------------------------------------------------------------

RunResult sh(const std::string& script, const std::vector<std::string>& args) {
  std::vector<std::string> argv{"/bin/sh", "-c", script, SHMBUS_CLI};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv, 20s);
}

TEST(RecordKeysCli, PubKeyAndTypeRoundTripThroughTailJsonFiltersAndARawCapture) {
  ChannelGuard channel(unique_channel("cli-keys"));
  ChannelGuard copy(unique_channel("cli-keys-copy"));
  const std::string key = "ord-7 \"x\"";
  ASSERT_TRUE(sh(R"(printf 'one\ntwo\n' | "$0" pub "$1" -q --key "$2" --message-type 42)",
                 {channel.name(), key})
                  .status.ok());
  ASSERT_TRUE(sh(R"(printf 'three\n' | "$0" pub "$1" -q)", {channel.name()}).status.ok());
  ASSERT_TRUE(sh(R"(printf 'four\n' | "$0" pub "$1" -q --message-type 5)", {channel.name()})
                  .status.ok());

  const RunResult tail = sh(R"("$0" tail "$1" --from earliest --count 4 --format json)",
                            {channel.name()});
  ASSERT_TRUE(tail.status.ok()) << tail.status.describe();
  const auto lines = lines_of(tail.out);
  ASSERT_EQ(lines.size(), 4u) << tail.out;
  const char* payloads[] = {"one", "two", "three", "four"};
  for (std::size_t i = 0; i < 4; ++i) {
    SCOPED_TRACE(lines[i]);
    const auto j = nlohmann::json::parse(lines[i]);
    EXPECT_EQ(j.at("seq"), i + 1);
    EXPECT_EQ(j.at("payload_text"), payloads[i]);
    if (i < 2) {
      EXPECT_EQ(j.at("key"), key);
      EXPECT_EQ(j.at("key_hex"), to_hex(bytes_of(key)));
      EXPECT_EQ(j.at("message_type"), 42);
    } else {
      EXPECT_FALSE(j.contains("key"));
      EXPECT_FALSE(j.contains("key_hex"));
      EXPECT_EQ(j.contains("message_type"), i == 3);
    }
  }

  // Filters: by key, by type (repeatable), both.
  const RunResult by_key =
      sh(R"("$0" tail "$1" --from earliest --count 2 --key "$2")", {channel.name(), key});
  ASSERT_TRUE(by_key.status.ok()) << by_key.status.describe();
  const auto key_lines = lines_of(by_key.out);
  ASSERT_EQ(key_lines.size(), 2u) << by_key.out;
  EXPECT_NE(key_lines[0].find("seq=1 "), std::string::npos) << key_lines[0];
  EXPECT_NE(key_lines[0].find("key=0x"), std::string::npos) << "a key with spaces is hex";
  EXPECT_NE(key_lines[1].find("seq=2 "), std::string::npos) << key_lines[1];
  const RunResult by_type = sh(
      R"("$0" tail "$1" --from earliest --count 2 --message-type 5 --message-type 0 --format json)",
      {channel.name()});
  ASSERT_TRUE(by_type.status.ok()) << by_type.status.describe();
  const auto type_lines = lines_of(by_type.out);
  ASSERT_EQ(type_lines.size(), 2u) << by_type.out;
  EXPECT_EQ(nlohmann::json::parse(type_lines[0]).at("seq"), 3);
  EXPECT_EQ(nlohmann::json::parse(type_lines[1]).at("seq"), 4);
  const RunResult none = sh(
      R"("$0" tail "$1" --from earliest --count 1 --key "$2" --message-type 5 --timeout-ms 200)",
      {channel.name(), key});
  EXPECT_EQ(none.status.code, 3) << "nothing matches both: timed out";

  // A raw capture republished on another channel keeps keys and types.
  const RunResult raw = sh(
      R"("$0" tail "$1" --from earliest --count 4 --format raw | "$0" pub "$2" -q --format raw)",
      {channel.name(), copy.name()});
  ASSERT_TRUE(raw.status.ok()) << raw.status.describe();
  const RunResult copied = sh(R"("$0" tail "$1" --from earliest --count 4 --format json)",
                              {copy.name()});
  ASSERT_TRUE(copied.status.ok());
  EXPECT_EQ(lines_of(copied.out).size(), 4u);
  for (std::size_t i = 0; i < 4; ++i) {
    auto a = nlohmann::json::parse(lines[i]);
    auto b = nlohmann::json::parse(lines_of(copied.out)[i]);
    for (auto* j : {&a, &b}) {
      j->erase("time_ns");
      j->erase("time");
    }
    EXPECT_EQ(a, b);
  }
}

TEST(RecordKeysCli, PubRefusesKeyOptionsWithACaptureAndKeysAboveTheMaximum) {
  ChannelGuard channel(unique_channel("cli-keybad"));
  const RunResult capture = sh(R"(printf '' | "$0" pub "$1" --format raw --key k 2>&1)",
                               {channel.name()});
  EXPECT_EQ(capture.status.code, 2);
  EXPECT_NE(capture.out.find("carry their own key"), std::string::npos) << capture.out;
  const RunResult long_key = sh(R"(printf 'x\n' | "$0" pub "$1" --key "$2" 2>&1)",
                                {channel.name(), std::string(257, 'k')});
  EXPECT_EQ(long_key.status.code, 2);
  EXPECT_NE(long_key.out.find("at most 256"), std::string::npos) << long_key.out;
}

TEST(RecordKeysCli, ReplayPrintsTheKeysAndTypesTheJournalKept) {
  shmbus::test::TempDir dir("cli-keys-replay");
  {
    shmbus::journal::WriterOptions o;
    o.dir = dir.path();
    o.channel = "keys";
    auto w = shmbus::journal::JournalWriter::open(o);
    ASSERT_TRUE(w) << w.error().message;
    ASSERT_TRUE(w->append_tagged(1, 1'000, bytes_of("user-1"), 3, bytes_of("a")));
    ASSERT_TRUE(w->append(2, 2'000, bytes_of("b")));
    ASSERT_TRUE(w->append_tagged(3, 3'000, bytes_of("\x01k"), 0, bytes_of("c")));
    ASSERT_TRUE(w->drain());
  }
  const RunResult json = sh(R"("$0" replay --dir "$1" --format json)", {dir.path()});
  ASSERT_TRUE(json.status.ok()) << json.status.describe();
  const auto lines = lines_of(json.out);
  ASSERT_EQ(lines.size(), 3u) << json.out;
  const auto first = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(first.at("key"), "user-1");
  EXPECT_EQ(first.at("message_type"), 3);
  EXPECT_FALSE(nlohmann::json::parse(lines[1]).contains("key_hex"));
  const auto third = nlohmann::json::parse(lines[2]);
  EXPECT_FALSE(third.contains("key"));  // a control character: hex only
  EXPECT_EQ(third.at("key_hex"), "016b");
  const RunResult text = sh(R"(TZ=UTC "$0" replay --dir "$1")", {dir.path()});
  ASSERT_TRUE(text.status.ok());
  const auto text_lines = lines_of(text.out);
  ASSERT_EQ(text_lines.size(), 3u) << text.out;
  EXPECT_NE(text_lines[0].find(" key=user-1 type=3 size=1 a"), std::string::npos) << text.out;
  EXPECT_NE(text_lines[2].find(" key=0x016b size=1 c"), std::string::npos) << text.out;
}

}  // namespace
