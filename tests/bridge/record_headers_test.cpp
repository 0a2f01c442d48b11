// The bridge's wire format (bridge/record_headers.hpp): what encode() writes decodes to the same
// record, through a real libnats message too, and every malformed header is refused with a
// reason that names it.
#include "bridge/record_headers.hpp"

#include "bridge/nats_handles.hpp"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace shmbus::bridge {
namespace {

RecordHeaders data_record() {
  RecordHeaders h;
  h.kind = RecordKind::data;
  h.incarnation = 0x0123456789abcdefULL;
  h.sequence = 42;
  h.time_ns = 1'700'000'000'123'456'789;
  h.origin = "host-A.example_1";
  return h;
}

RecordHeaders gap_record() {
  RecordHeaders h = data_record();
  h.kind = RecordKind::gap;
  h.sequence = 100;
  h.count = 58;
  return h;
}

// A message's headers as a map, one value each (several: the name maps to a vector of them).
struct FakeMessage {
  std::multimap<std::string, std::string> headers;

  static FakeMessage of(const RecordHeaders& h) {
    FakeMessage m;
    auto fields = encode(h);
    EXPECT_TRUE(fields.has_value()) << fields.error();
    for (const auto& [name, value] : *fields) m.headers.emplace(std::string(name), value);
    m.headers.emplace(std::string(kHeaderMsgId), msg_id(h));
    return m;
  }
  void set(std::string_view name, std::string value) {
    m_erase(name);
    headers.emplace(std::string(name), std::move(value));
  }
  void m_erase(std::string_view name) { headers.erase(std::string(name)); }
  tl::expected<RecordHeaders, std::string> decode() const {
    return bridge::decode([this](std::string_view name) {
      HeaderValue v;
      const auto [first, last] = headers.equal_range(std::string(name));
      const auto n = std::distance(first, last);
      if (n == 1) {
        v.presence = HeaderValue::Presence::one;
        v.value = first->second;
      } else if (n > 1) {
        v.presence = HeaderValue::Presence::several;
      }
      return v;
    });
  }
};

// Decoding `m` fails and the reason mentions `needle`.
void expect_refused(const FakeMessage& m, const std::string& needle) {
  const auto got = m.decode();
  ASSERT_FALSE(got.has_value()) << "accepted; expected a refusal mentioning " << needle;
  EXPECT_NE(got.error().find(needle), std::string::npos) << got.error();
}

TEST(RecordHeaders, MsgIdsNameTheIncarnationAndTheSequenceOrRange) {
  EXPECT_EQ(data_msg_id(0x0123456789abcdefULL, 42), "0123456789abcdef:42");
  EXPECT_EQ(data_msg_id(1, 7), "0000000000000001:7");
  EXPECT_EQ(gap_msg_id(0xffULL, 100, 157), "00000000000000ff:100-157");
  EXPECT_EQ(msg_id(gap_record()), "0123456789abcdef:100-157");
  const auto gap = parse_msg_id("0123456789abcdef:100-157");
  ASSERT_TRUE(gap.has_value()) << gap.error();
  EXPECT_EQ(gap->incarnation, 0x0123456789abcdefULL);
  EXPECT_EQ(gap->first, 100u);
  EXPECT_EQ(gap->last, 157u);
  EXPECT_TRUE(gap->gap);
  const auto data = parse_msg_id("0123456789abcdef:18446744073709551615");
  ASSERT_TRUE(data.has_value()) << data.error();
  EXPECT_EQ(data->first, UINT64_MAX);
  EXPECT_FALSE(data->gap);
}

TEST(RecordHeaders, MalformedMsgIdsAreRefused) {
  for (const char* bad :
       {"", "0123456789abcdef", "0123456789abcdef:", "0123456789ABCDEF:1", "123456789abcdef:1",
        "00000000000000000:1", "0000000000000000:1", "0123456789abcdef:0", "0123456789abcdef:01",
        "0123456789abcdef:+1", "0123456789abcdef: 1", "0123456789abcdef:1-", "0123456789abcdef:5-4",
        "0123456789abcdef:1-2-3", "0123456789abcdef:18446744073709551616", "x123456789abcdef:1"}) {
    const auto got = parse_msg_id(bad);
    EXPECT_FALSE(got.has_value()) << "accepted '" << bad << "'";
    if (!got) {
      EXPECT_NE(got.error().find("Nats-Msg-Id"), std::string::npos) << got.error();
    }
  }
}

TEST(RecordHeaders, ADataRecordRoundTrips) {
  const RecordHeaders h = data_record();
  const auto fields = encode(h);
  ASSERT_TRUE(fields.has_value()) << fields.error();
  std::map<std::string, std::string> by_name;
  for (const auto& [name, value] : *fields) by_name[std::string(name)] = value;
  EXPECT_EQ(by_name.at("Shmbus-Type"), "data");
  EXPECT_EQ(by_name.at("Shmbus-Seq"), "42");
  EXPECT_EQ(by_name.at("Shmbus-Time"), "1700000000123456789");
  EXPECT_EQ(by_name.at("Shmbus-Origin"), "host-A.example_1");
  EXPECT_EQ(by_name.at("Shmbus-Incarnation"), "0123456789abcdef");
  EXPECT_FALSE(by_name.contains("Shmbus-Count"));
  EXPECT_FALSE(by_name.contains("Shmbus-Key"));
  EXPECT_FALSE(by_name.contains("Shmbus-Message-Type"));
  const auto back = FakeMessage::of(h).decode();
  ASSERT_TRUE(back.has_value()) << back.error();
  EXPECT_EQ(*back, h);
}

TEST(RecordHeaders, ATaggedRecordKeepsItsKeyBytesAndType) {
  RecordHeaders h = data_record();
  h.key = std::string("\x00\x01k\xff", 4);
  h.message_type = 65535;
  const auto m = FakeMessage::of(h);
  EXPECT_EQ(m.headers.find("Shmbus-Key")->second, "00016bff");
  EXPECT_EQ(m.headers.find("Shmbus-Message-Type")->second, "65535");
  const auto back = m.decode();
  ASSERT_TRUE(back.has_value()) << back.error();
  EXPECT_EQ(*back, h);
  h.key.assign(256, 'x');
  ASSERT_TRUE(FakeMessage::of(h).decode().has_value());
  h.key.assign(257, 'x');
  EXPECT_FALSE(encode(h).has_value());
}

TEST(RecordHeaders, AGapRecordRoundTripsWithItsExactRange) {
  const RecordHeaders h = gap_record();
  const auto m = FakeMessage::of(h);
  EXPECT_EQ(m.headers.find("Shmbus-Type")->second, "gap");
  EXPECT_EQ(m.headers.find("Shmbus-Seq")->second, "100");
  EXPECT_EQ(m.headers.find("Shmbus-Count")->second, "58");
  const auto back = m.decode();
  ASSERT_TRUE(back.has_value()) << back.error();
  EXPECT_EQ(*back, h);
  EXPECT_EQ(back->last_sequence(), 157u);
}

TEST(RecordHeaders, EncodeRefusesWhatDecodeWouldRefuse) {
  RecordHeaders h = data_record();
  h.incarnation = 0;
  EXPECT_FALSE(encode(h).has_value());
  h = data_record();
  h.sequence = 0;
  EXPECT_FALSE(encode(h).has_value());
  h = data_record();
  h.origin = "bad host";
  EXPECT_FALSE(encode(h).has_value());
  h = gap_record();
  h.count = 0;
  EXPECT_FALSE(encode(h).has_value());
  h = gap_record();
  h.sequence = UINT64_MAX;
  h.count = 2;
  EXPECT_FALSE(encode(h).has_value());
  h = gap_record();
  h.message_type = 3;
  EXPECT_FALSE(encode(h).has_value());
}

TEST(RecordHeaders, EveryMissingHeaderIsNamed) {
  for (const char* name : {"Nats-Msg-Id", "Shmbus-Type", "Shmbus-Seq", "Shmbus-Time",
                           "Shmbus-Origin", "Shmbus-Incarnation"}) {
    auto m = FakeMessage::of(data_record());
    m.m_erase(name);
    expect_refused(m, std::string(name) + ": missing");
  }
  auto gap = FakeMessage::of(gap_record());
  gap.m_erase("Shmbus-Count");
  expect_refused(gap, "Shmbus-Count: missing");
  EXPECT_FALSE(FakeMessage{}.decode().has_value());
}

TEST(RecordHeaders, EveryMalformedValueIsRefusedNamingItsHeader) {
  struct Case {
    const char* header;
    const char* value;
  };
  const Case cases[] = {
      {"Shmbus-Type", "Data"},        {"Shmbus-Type", ""},           {"Shmbus-Type", "tagged"},
      {"Shmbus-Seq", "0"},            {"Shmbus-Seq", "042"},         {"Shmbus-Seq", "+42"},
      {"Shmbus-Seq", "42 "},          {"Shmbus-Seq", "-42"},         {"Shmbus-Seq", "4x2"},
      {"Shmbus-Seq", "18446744073709551616"},                        {"Shmbus-Seq", ""},
      {"Shmbus-Time", "1.5"},         {"Shmbus-Time", "01"},         {"Shmbus-Time", "-0"},
      {"Shmbus-Time", "9223372036854775808"},                        {"Shmbus-Time", ""},
      {"Shmbus-Origin", ""},          {"Shmbus-Origin", "a b"},      {"Shmbus-Origin", "a/b"},
      {"Shmbus-Origin", "h\xc3\xa9"},
      {"Shmbus-Incarnation", "0123456789ABCDEF"},                    {"Shmbus-Incarnation", "0"},
      {"Shmbus-Incarnation", "0000000000000000"},                    {"Shmbus-Incarnation", "0123456789abcdeg"},
      {"Shmbus-Incarnation", "0123456789abcdef0"},
      {"Shmbus-Key", ""},             {"Shmbus-Key", "abc"},         {"Shmbus-Key", "AB"},
      {"Shmbus-Key", "zz"},
      {"Shmbus-Message-Type", "0"},   {"Shmbus-Message-Type", "65536"}, {"Shmbus-Message-Type", "07"},
      {"Shmbus-Count", "1"},  // a data record has no count
  };
  for (const Case& c : cases) {
    auto m = FakeMessage::of(data_record());
    m.set(c.header, c.value);
    SCOPED_TRACE(std::string(c.header) + " = '" + c.value + "'");
    expect_refused(m, c.header);
  }
  auto long_host = FakeMessage::of(data_record());
  long_host.set("Shmbus-Origin", std::string(65, 'h'));
  expect_refused(long_host, "Shmbus-Origin");
  auto long_key = FakeMessage::of(data_record());
  long_key.set("Shmbus-Key", std::string(514, 'a'));
  expect_refused(long_key, "Shmbus-Key");
}

TEST(RecordHeaders, GapRecordsRefuseBadCountsAndDataOnlyHeaders) {
  for (const char* bad : {"0", "01", "-1", "x", "18446744073709551616"}) {
    auto m = FakeMessage::of(gap_record());
    m.set("Shmbus-Count", bad);
    SCOPED_TRACE(bad);
    expect_refused(m, "Shmbus-Count");
  }
  auto overflow = FakeMessage::of(gap_record());
  overflow.set("Shmbus-Seq", "18446744073709551615");
  overflow.set("Shmbus-Count", "2");
  expect_refused(overflow, "Shmbus-Count");
  auto keyed = FakeMessage::of(gap_record());
  keyed.set("Shmbus-Key", "00");
  expect_refused(keyed, "Shmbus-Key");
  auto typed = FakeMessage::of(gap_record());
  typed.set("Shmbus-Message-Type", "3");
  expect_refused(typed, "Shmbus-Message-Type");
}

TEST(RecordHeaders, TheMsgIdMustNameExactlyThisRecord) {
  auto m = FakeMessage::of(data_record());
  m.set("Nats-Msg-Id", "0123456789abcdef:43");
  expect_refused(m, "does not match");
  m.set("Nats-Msg-Id", "fedcba9876543210:42");
  expect_refused(m, "does not match");
  m.set("Nats-Msg-Id", "0123456789abcdef:42-42");
  expect_refused(m, "does not match");
  m.set("Nats-Msg-Id", "garbage");
  expect_refused(m, "Nats-Msg-Id");
  auto gap = FakeMessage::of(gap_record());
  gap.set("Nats-Msg-Id", "0123456789abcdef:100-158");
  expect_refused(gap, "does not match");
}

TEST(RecordHeaders, ARepeatedHeaderIsRefused) {
  auto m = FakeMessage::of(data_record());
  m.headers.emplace("Shmbus-Seq", "42");
  expect_refused(m, "Shmbus-Seq: present more than once");
}

TEST(RecordHeaders, HostNamesAreCheckedAsShmbusOriginWantsThem) {
  EXPECT_FALSE(host_problem("a").has_value());
  EXPECT_FALSE(host_problem(std::string(64, 'a')).has_value());
  EXPECT_TRUE(host_problem(std::string(65, 'a')).has_value());
  EXPECT_TRUE(host_problem("").has_value());
  EXPECT_TRUE(host_problem("a:b").has_value());
}

TEST(RecordHeaders, ALibnatsMessageCarriesThemThereAndBack) {
  RecordHeaders h = data_record();
  h.key = "k1";
  h.message_type = 9;
  ASSERT_TRUE(open_library().has_value());
  natsMsg* msg = nullptr;
  ASSERT_EQ(natsMsg_Create(&msg, "shmbus.test", nullptr, "payload", 7), NATS_OK);
  ASSERT_TRUE(set_headers(msg, h).has_value());
  ASSERT_EQ(natsMsgHeader_Set(msg, "Nats-Msg-Id", msg_id(h).c_str()), NATS_OK);
  const auto back = read_headers(msg);
  ASSERT_TRUE(back.has_value()) << back.error();
  EXPECT_EQ(*back, h);
  // A second value of a header is refused, through libnats' own header list.
  ASSERT_EQ(natsMsgHeader_Add(msg, "Shmbus-Origin", "other"), NATS_OK);
  const auto twice = read_headers(msg);
  ASSERT_FALSE(twice.has_value());
  EXPECT_NE(twice.error().find("Shmbus-Origin: present more than once"), std::string::npos);
  natsMsg_Destroy(msg);
  // A message of another writer, without any shmbus header.
  ASSERT_EQ(natsMsg_Create(&msg, "shmbus.test", nullptr, "x", 1), NATS_OK);
  const auto foreign = read_headers(msg);
  ASSERT_FALSE(foreign.has_value());
  EXPECT_NE(foreign.error().find("Shmbus-Type: missing"), std::string::npos);
  natsMsg_Destroy(msg);
  close_library();
}

}  // namespace
}  // namespace shmbus::bridge
