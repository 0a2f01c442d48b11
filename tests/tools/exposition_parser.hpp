// A strict parser of the Prometheus text exposition format for the tests of `stat --prometheus`
// (tools/stat_prometheus.cpp) and of its HTTP listener: a malformed line, a second # HELP or
// # TYPE for one family, or a bad escape in a label value is a test failure.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace shmbus::test {

struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

struct ParsedExposition {
  std::map<std::string, std::string> type;  // family -> counter/gauge/summary
  std::map<std::string, std::string> help;
  std::vector<Sample> samples;
};

inline bool is_metric_char(char c, bool first) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
         (!first && c >= '0' && c <= '9');
}

// A metric name at the start of `text`, or "" if it does not start with one.
inline std::string metric_name(const std::string& text) {
  std::size_t n = 0;
  while (n < text.size() && is_metric_char(text[n], n == 0)) ++n;
  return text.substr(0, n);
}

// Parses the text exposition format strictly enough to catch malformed output: every line is a
// "# HELP name text", a "# TYPE name counter|gauge|summary" or a sample
// `name{label="value",...} number`, with label values unescaped. (No std::regex: GCC 12 warns
// inside it under the sanitizer build's -O1.)
inline ParsedExposition parse_exposition(const std::string& text) {
  ParsedExposition e;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    for (const char* prefix : {"# HELP ", "# TYPE "}) {
      const std::string kind = prefix;
      if (line.rfind(kind, 0) != 0) continue;
      const std::string rest = line.substr(kind.size());
      const std::string name = metric_name(rest);
      const std::string value = name.size() < rest.size() && rest[name.size()] == ' '
                                    ? rest.substr(name.size() + 1)
                                    : std::string();
      EXPECT_FALSE(name.empty() || value.empty()) << "bad line: '" << line << "'";
      auto& map = kind == "# HELP " ? e.help : e.type;
      EXPECT_EQ(map.count(name), 0u) << "two '" << kind << "' lines for " << name;
      map[name] = value;
      if (kind == "# TYPE ") {
        EXPECT_TRUE(value == "counter" || value == "gauge" || value == "summary") << line;
      }
    }
    if (line.rfind("#", 0) == 0) continue;

    Sample s;
    s.name = metric_name(line);
    std::size_t i = s.name.size();
    if (s.name.empty() || i >= line.size() || line[i] != '{') {
      ADD_FAILURE() << "not an exposition line: '" << line << "'";
      continue;
    }
    ++i;
    bool ok = true;
    while (ok && i < line.size() && line[i] != '}') {
      const std::size_t eq = line.find("=\"", i);
      if (eq == std::string::npos || metric_name(line.substr(i)).size() != eq - i) {
        ok = false;
        break;
      }
      const std::string key = line.substr(i, eq - i);
      std::string value;
      std::size_t k = eq + 2;
      for (; k < line.size() && line[k] != '"'; ++k) {
        if (line[k] == '\\') {
          ++k;
          if (k >= line.size() || (line[k] != 'n' && line[k] != '\\' && line[k] != '"')) {
            ok = false;
            break;
          }
          value += line[k] == 'n' ? '\n' : line[k];
        } else {
          value += line[k];
        }
      }
      if (k >= line.size()) ok = false;
      s.labels[key] = value;
      i = k + 1;
      if (i < line.size() && line[i] == ',') ++i;
    }
    if (!ok || i + 2 > line.size() || line[i] != '}' || line[i + 1] != ' ') {
      ADD_FAILURE() << "bad labels: '" << line << "'";
      continue;
    }
    const std::string number = line.substr(i + 2);
    std::size_t used = 0;
    s.value = std::stod(number, &used);
    EXPECT_EQ(used, number.size()) << "bad value: '" << line << "'";
    e.samples.push_back(std::move(s));
  }
  return e;
}

inline std::vector<Sample> samples_named(const ParsedExposition& e, const std::string& name) {
  std::vector<Sample> out;
  for (const Sample& s : e.samples) {
    if (s.name == name) out.push_back(s);
  }
  return out;
}

// The family a sample belongs to: its name, or without the _sum/_count of a summary.
inline std::string family_of(const ParsedExposition& e, const std::string& sample_name) {
  std::string family = sample_name;
  for (const std::string suffix : {"_sum", "_count"}) {
    if (e.type.count(family) == 0 && family.size() > suffix.size() &&
        family.compare(family.size() - suffix.size(), suffix.size(), suffix) == 0) {
      family.resize(family.size() - suffix.size());
    }
  }
  return family;
}

// Parses `text` and checks that every sample's family has one # HELP and one # TYPE, the TYPE
// before the family's first sample, and that every *_total family is a counter.
inline ParsedExposition parse_well_formed_exposition(const std::string& text) {
  ParsedExposition e = parse_exposition(text);
  EXPECT_TRUE(text.empty() || text.back() == '\n');
  for (const Sample& s : e.samples) {
    const std::string family = family_of(e, s.name);
    EXPECT_EQ(e.type.count(family), 1u) << s.name;
    EXPECT_EQ(e.help.count(family), 1u) << s.name;
    EXPECT_LT(text.find("# TYPE " + family + " "), text.find("\n" + s.name + "{")) << s.name;
  }
  for (const auto& [family, type] : e.type) {
    if (family.size() > 6 && family.compare(family.size() - 6, 6, "_total") == 0) {
      EXPECT_EQ(type, "counter") << family;
    }
  }
  return e;
}

}  // namespace shmbus::test
