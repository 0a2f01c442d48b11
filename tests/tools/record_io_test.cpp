// The record formats of tail/replay and what pub reads back (tools/record_format.hpp), printable
// text (is_printable_text, payload_preview, payload_text) and the terminal-only progress line.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tools/format.hpp"
#include "tools/progress.hpp"
#include "tools/record_format.hpp"

namespace {

using namespace shmbus::tools;
using shmbus::Message;

std::vector<std::byte> bytes_of(std::string_view text) {
  const auto* p = reinterpret_cast<const std::byte*>(text.data());
  return {p, p + text.size()};
}

bool printable(std::string_view text) { return is_printable_text(bytes_of(text)); }

TEST(PrintableText, IsWellFormedUtf8WithoutControlOrBidiCharacters) {
  EXPECT_TRUE(printable(""));
  EXPECT_TRUE(printable("8=FIX.4.4 35=D"));
  EXPECT_TRUE(printable("w\xc3\xb6rld \xe2\x82\xac \xf0\x9f\x93\x88"));  // o-umlaut, euro, chart
  EXPECT_FALSE(printable("a\tb"));
  EXPECT_FALSE(printable("line\n"));
  EXPECT_FALSE(
      printable("8=FIX\x01"
                "35=D"));  // SOH
  EXPECT_FALSE(printable("\x7f"));
  EXPECT_FALSE(printable("\xc2\x85"));  // C1 control NEL
  EXPECT_FALSE(
      printable("\xe2\x80\xae"
                "abc"));                        // right-to-left override
  EXPECT_FALSE(printable("\xc0\x80"));          // overlong NUL
  EXPECT_FALSE(printable("\xe0\x80\xaf"));      // overlong '/'
  EXPECT_FALSE(printable("\xed\xa0\x80"));      // a surrogate
  EXPECT_FALSE(printable("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(printable("\xe2\x82"));          // cut short
  EXPECT_FALSE(printable("\x80"));              // a lone continuation byte
}

TEST(PrintableText, PreviewShowsUtf8AsTextCutBeforeASplitCharacterAndBinaryAsHex) {
  EXPECT_EQ(payload_preview(bytes_of("w\xc3\xb6rld")), "w\xc3\xb6rld");
  EXPECT_EQ(payload_preview(bytes_of("ab\xc3\xb6"), 3), "ab...");
  EXPECT_EQ(payload_preview(bytes_of("\x01\x02"), 64), "0x0102");
}

TEST(RecordLine, JsonAddsPayloadTextOnlyForPrintablePayloadsAndKeepsEveryField) {
  const auto text = bytes_of("w\xc3\xb6rld \"q\"");
  const auto j = nlohmann::json::parse(record_line(Message{7, 42, text, 3}, RecordFormat::json));
  EXPECT_EQ(j.at("seq"), 7);
  EXPECT_EQ(j.at("time_ns"), 42);
  EXPECT_EQ(j.at("size"), text.size());
  EXPECT_EQ(j.at("lost_before"), 3);
  EXPECT_EQ(j.at("payload_hex"), to_hex(text));
  EXPECT_EQ(j.at("payload_text"), "w\xc3\xb6rld \"q\"");
  EXPECT_TRUE(j.contains("time"));
  const auto binary = bytes_of(std::string_view("\x00\xff", 2));
  const auto b = nlohmann::json::parse(record_line(Message{8, 43, binary, 0}, RecordFormat::json));
  EXPECT_FALSE(b.contains("payload_text"));
  EXPECT_EQ(b.at("payload_hex"), "00ff");
}

// Reads every record of `capture` as pub --format raw does.
std::vector<CapturedRecord> read_raw(const std::string& capture, std::uint32_t max_payload,
                                     std::string* error = nullptr) {
  std::unique_ptr<std::FILE, decltype(&std::fclose)> in(
      fmemopen(const_cast<char*>(capture.data()), capture.size(), "r"), &std::fclose);
  if (capture.empty()) in.reset(std::fopen("/dev/null", "r"));
  RawRecordReader reader(in.get(), max_payload);
  std::vector<CapturedRecord> records;
  for (CapturedRecord r;;) {
    const CaptureRead read = reader.next(r);
    if (read == CaptureRead::record) {
      records.push_back(r);
      continue;
    }
    if (error != nullptr) *error = read == CaptureRead::end ? "" : reader.error();
    return records;
  }
}

TEST(RawFrames, RoundTripDataAndLostRecordsExactly) {
  const auto binary =
      bytes_of(std::string_view("\n\0\xff"
                                "SBRD",
                                7));
  std::string capture;
  append_raw_data(capture, 5, -1, binary);
  append_raw_lost(capture, 6, 2, 99);
  append_raw_data(capture, 8, 1'800'000'000'000'000'000, {});
  EXPECT_EQ(capture.substr(0, 8), std::string("SBRD\x07\0\0\0", 8));
  EXPECT_EQ(capture.size(), 3 * kRawHeaderBytes + 7 + 8);

  std::string error;
  const auto records = read_raw(capture, 64, &error);
  EXPECT_EQ(error, "");
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[0].kind, CapturedRecord::Kind::data);
  EXPECT_EQ(records[0].sequence, 5u);
  EXPECT_EQ(records[0].time_ns, -1);
  EXPECT_EQ(records[0].payload, binary);
  EXPECT_EQ(records[1].kind, CapturedRecord::Kind::lost);
  EXPECT_EQ(records[1].sequence, 6u);
  EXPECT_EQ(records[1].lost, 2u);
  EXPECT_EQ(records[1].time_ns, 99);
  EXPECT_EQ(records[2].sequence, 8u);
  EXPECT_TRUE(records[2].payload.empty());
  EXPECT_TRUE(read_raw("", 64).empty());
}

TEST(RawFrames, CutGarbledOrOversizedCapturesAreErrorsNamingTheRecordAndByte) {
  std::string capture;
  append_raw_data(capture, 1, 0, bytes_of("hello"));
  append_raw_data(capture, 2, 0, bytes_of("world"));
  std::string error;
  EXPECT_EQ(read_raw(capture.substr(0, capture.size() - 2), 64, &error).size(), 1u);
  EXPECT_NE(error.find("stdin ends 3 bytes into the 5-byte payload of raw record 2 (at byte 29"),
            std::string::npos)
      << error;
  EXPECT_EQ(read_raw(capture.substr(0, 40), 64, &error).size(), 1u);
  EXPECT_NE(error.find("11 bytes into the 24-byte header of raw record 2"), std::string::npos)
      << error;
  EXPECT_TRUE(read_raw("seq=1 time=...\n" + capture, 64, &error).empty());
  EXPECT_NE(error.find("raw record 1 (at byte 0) begins with 'seq='"), std::string::npos) << error;
  EXPECT_TRUE(read_raw(capture, 4, &error).empty());
  EXPECT_NE(error.find("holds 5 bytes, more than the channel's max message (4 bytes)"),
            std::string::npos)
      << error;
}

CapturedRecord json_record(const std::string& line) {
  const auto r = parse_json_record_line(line);
  EXPECT_TRUE(r.has_value()) << line << ": " << (r ? "" : r.error());
  if (!r || !*r) return {};
  return **r;
}

std::string json_error(const std::string& line) {
  const auto r = parse_json_record_line(line);
  EXPECT_FALSE(r.has_value()) << line;
  return r ? std::string() : r.error();
}

TEST(JsonCapture, ReadsTheLinesTailPrintsBackIntoTheSameRecords) {
  const auto payload = bytes_of(std::string_view("\x00\n\xc3\xb6", 4));
  const auto line = record_line(Message{9, 77, payload, 0}, RecordFormat::json);
  const CapturedRecord r = json_record(line);
  EXPECT_EQ(r.kind, CapturedRecord::Kind::data);
  EXPECT_EQ(r.sequence, 9u);
  EXPECT_EQ(r.time_ns, 77);
  EXPECT_EQ(r.payload, payload);
  EXPECT_EQ(json_record(R"({"payload_text":"w\u00f6rld"})").payload, bytes_of("w\xc3\xb6rld"));
  const CapturedRecord lost = json_record(lost_line(3, 10, RecordFormat::json));
  EXPECT_EQ(lost.kind, CapturedRecord::Kind::lost);
  EXPECT_EQ(lost.sequence, 7u);
  EXPECT_EQ(lost.lost, 3u);
  const CapturedRecord gap = json_record(R"({"type":"gap","seq":6,"count":2,"time_ns":5})");
  EXPECT_EQ(gap.kind, CapturedRecord::Kind::lost);
  EXPECT_EQ(gap.sequence, 6u);
  EXPECT_EQ(gap.lost, 2u);
  const auto blank = parse_json_record_line("  ");
  ASSERT_TRUE(blank.has_value());
  EXPECT_FALSE(blank->has_value());
}

TEST(JsonCapture, BadLinesSayWhichFieldIsWrong) {
  EXPECT_EQ(json_error("seq=1 hello"), "not valid JSON");
  EXPECT_EQ(json_error("[1]"), "not a JSON object");
  EXPECT_NE(json_error(R"({"seq":1})").find("neither a record"), std::string::npos);
  EXPECT_EQ(json_error(R"({"payload_hex":"abc"})"), "payload_hex has an odd number of digits (3)");
  EXPECT_EQ(json_error(R"({"payload_hex":"zz"})"),
            "payload_hex has a non-hex character at position 0");
  EXPECT_EQ(json_error(R"({"payload_hex":"6869","payload_text":"ho"})"),
            "\"payload_text\" and \"payload_hex\" differ");
  EXPECT_EQ(json_error(R"({"payload_hex":"6869","size":3})"),
            "\"size\" is 3 but the payload has 2 bytes");
  EXPECT_EQ(json_error(R"({"payload_hex":12})"), "\"payload_hex\" is not a string");
  EXPECT_EQ(json_error(R"({"lost":5,"before_seq":3})"), "\"lost\" (5) exceeds \"before_seq\" (3)");
}

TEST(ProgressLine, WritesNothingToAPipe) {
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_NONBLOCK), 0);
  {
    ProgressLine progress(fds[1], "shmbus replay", 0);
    EXPECT_FALSE(progress.enabled());
    progress.update(10, 10, 0);
  }
  char buffer[64];
  EXPECT_EQ(read(fds[0], buffer, sizeof buffer), -1);  // EAGAIN: empty
  close(fds[0]);
  close(fds[1]);
}

TEST(ProgressLine, RewritesOneLineOnATerminalAndErasesItAtTheEnd) {
  const int master = posix_openpt(O_RDWR | O_NOCTTY);
  ASSERT_GE(master, 0);
  ASSERT_EQ(grantpt(master), 0);
  ASSERT_EQ(unlockpt(master), 0);
  const int terminal = open(ptsname(master), O_RDWR | O_NOCTTY);
  ASSERT_GE(terminal, 0);
  {
    ProgressLine progress(terminal, "shmbus replay", 0);
    EXPECT_TRUE(progress.enabled());
    progress.update(1234, 99, 0);
  }
  // The terminal may hand the two writes over separately: read until the erase arrives.
  std::string seen;
  const auto ends_erased = [&] {
    return seen.size() > 4 && seen.substr(seen.size() - 4) == "\r\x1b[K";
  };
  for (int attempt = 0; attempt < 100 && !ends_erased(); ++attempt) {
    pollfd ready{master, POLLIN, 0};
    if (poll(&ready, 1, 20) != 1) continue;
    char buffer[4096];
    const ssize_t n = read(master, buffer, sizeof buffer);
    if (n > 0) seen.append(buffer, static_cast<std::size_t>(n));
  }
  EXPECT_NE(seen.find("\r\x1b[Kshmbus replay: 1234 records, at seq=99"), std::string::npos) << seen;
  EXPECT_EQ(seen.substr(seen.size() - 4), "\r\x1b[K");  // erased at the end
  close(terminal);
  close(master);
}

}  // namespace
