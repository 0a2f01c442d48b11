// stat_watch_frame, display_width and truncate_middle (tools/observe_format.hpp): the page of
// `stat --watch`, fitted to a terminal's width.
#include <algorithm>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "tools/observe_format.hpp"
#include "tools/observe_internal.hpp"

namespace shmbus::tools {

std::size_t display_width(std::string_view text) {
  std::size_t columns = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\x1b' && i + 1 < text.size() && text[i + 1] == '[') {
      const std::size_t end = text.find('m', i);
      if (end != std::string_view::npos) {
        i = end;
        continue;
      }
    }
    // UTF-8 continuation bytes (10xxxxxx) belong to the code point before them.
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) ++columns;
  }
  return columns;
}

namespace {

// Byte offset where the first `columns` code points of `text` end.
std::size_t utf8_prefix_bytes(std::string_view text, std::size_t columns) {
  std::size_t seen = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) {
      if (seen == columns) return i;
      ++seen;
    }
  }
  return text.size();
}

// Byte offset where the last `columns` code points of `text` begin.
std::size_t utf8_suffix_start(std::string_view text, std::size_t columns) {
  std::size_t seen = 0;
  std::size_t i = text.size();
  while (i > 0 && seen < columns) {
    --i;
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) ++seen;
  }
  return i;
}

}  // namespace

std::string truncate_middle(std::string_view text, std::size_t width) {
  const std::size_t columns = display_width(text);
  if (columns <= width) return std::string(text);
  if (width < 5) return std::string(text.substr(0, utf8_prefix_bytes(text, width)));
  // Names of one channel's subscribers tend to share their start and differ at the end
  // ("...-replica-07"): keep a third of the start and two thirds of the end.
  const std::size_t kept = width - 3;
  const std::size_t head = kept / 3;
  return fmt::format("{}...{}", text.substr(0, utf8_prefix_bytes(text, head)),
                     text.substr(utf8_suffix_start(text, kept - head)));
}

namespace {

constexpr std::size_t kWatchIndent = 2;
constexpr std::size_t kWatchGap = 2;
constexpr std::size_t kWatchLabelColumns = 13;  // "  " + a label padded to 10 + " "
constexpr std::size_t kMinNameColumns = 10;

// SGR sequences; "" when colour is off.
struct WatchPalette {
  bool on = false;
  std::string paint(std::string_view text, std::string_view sgr) const {
    if (!on || sgr.empty()) return std::string(text);
    return fmt::format("\x1b[{}m{}\x1b[0m", sgr, text);
  }
};

// The colour of a state word of the producer and subscriber tables.
std::string_view watch_state_sgr(std::string_view cell) {
  if (cell == "alive") return "32";                                          // green
  if (cell == "lagging") return "33";                                        // yellow
  if (cell == "lapped" || cell == "dead" || cell == "evicted") return "31";  // red
  if (cell == "detached") return "2";                                        // dim
  return "";
}

// A name from another process, shown on the operator's terminal: control characters (which could
// move the cursor or change colours) become '?'.
std::string watch_printable(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) c = '?';
  }
  return out;
}

// The last resort for a line that still does not fit (a column wider than the terminal on its
// own): cut it, keeping its start.
std::string watch_clip(std::string line, std::size_t width) {
  if (display_width(line) <= width) return line;
  std::string plain;  // clipping inside an escape sequence would corrupt it: drop colours here
  for (std::size_t i = 0; i < line.size(); ++i) {
    if (line[i] == '\x1b') {
      const std::size_t end = line.find('m', i);
      if (end != std::string::npos) {
        i = end;
        continue;
      }
    }
    plain += line[i];
  }
  return plain.substr(0, utf8_prefix_bytes(plain, width));
}

// The non-key columns cut, in order, into as few groups as fit in `budget` (a group's cost with the
// keys, from `cost`; a column too wide for any budget gets a group of its own), and among the cuts
// into that many groups the one whose widest group is narrowest: the groups come out about equally
// wide, leaving each the most room for its name column. Each group starts with the keys.
std::vector<std::vector<std::size_t>> watch_column_groups(
    std::size_t column_count, const std::vector<std::size_t>& keys, std::size_t budget,
    const std::function<std::size_t(const std::vector<std::size_t>&)>& cost) {
  std::vector<std::size_t> others;
  for (std::size_t c = 0; c < column_count; ++c) {
    if (std::find(keys.begin(), keys.end(), c) == keys.end()) others.push_back(c);
  }
  const std::size_t n = others.size();
  const auto span_cost = [&](std::size_t begin, std::size_t end) {  // others[begin, end)
    std::vector<std::size_t> columns = keys;
    columns.insert(columns.end(), others.begin() + static_cast<std::ptrdiff_t>(begin),
                   others.begin() + static_cast<std::ptrdiff_t>(end));
    return cost(columns);
  };
  const auto fits = [&](std::size_t begin, std::size_t end) {
    return end - begin == 1 || span_cost(begin, end) <= budget;
  };
  // best[g][i]: the narrowest widest group over cuts of the first i columns into g groups.
  constexpr std::size_t kNone = static_cast<std::size_t>(-1);
  std::vector<std::vector<std::size_t>> best(n + 1, std::vector<std::size_t>(n + 1, kNone));
  std::vector<std::vector<std::size_t>> cut(n + 1, std::vector<std::size_t>(n + 1, 0));
  best[0][0] = 0;
  std::size_t groups = n == 0 ? 0 : kNone;
  for (std::size_t g = 1; g <= n && groups == kNone; ++g) {
    for (std::size_t i = 1; i <= n; ++i) {
      for (std::size_t j = g - 1; j < i; ++j) {
        if (best[g - 1][j] == kNone || !fits(j, i)) continue;
        const std::size_t widest = std::max(best[g - 1][j], span_cost(j, i));
        if (widest < best[g][i]) {
          best[g][i] = widest;
          cut[g][i] = j;
        }
      }
    }
    if (best[g][n] != kNone) groups = g;
  }
  std::vector<std::vector<std::size_t>> out(groups == kNone ? 0 : groups);
  for (std::size_t g = out.size(), i = n; g > 0; --g) {
    const std::size_t j = cut[g][i];
    out[g - 1] = keys;
    out[g - 1].insert(out[g - 1].end(), others.begin() + static_cast<std::ptrdiff_t>(j),
                      others.begin() + static_cast<std::ptrdiff_t>(i));
    i = j;
  }
  if (out.empty()) out.push_back(keys);
  return out;
}

struct WatchFit {
  std::vector<std::size_t> keys;  // columns repeated in every group (slot, name)
  std::ptrdiff_t flex = -1;       // the key column that shrinks (name), or -1
  std::ptrdiff_t state = -1;      // the column whose words are coloured, or -1
};

// `table` as one or more aligned tables no wider than `width`: the key columns, then as many of
// the other columns, in order, as fit; the rest in further groups below, a blank line apart.
std::string render_watch_table(detail::StatTable table, const WatchFit& spec, std::size_t width,
                               const WatchPalette& palette) {
  for (auto& row : table.rows) {
    for (auto& cell : row) cell = watch_printable(cell);
  }
  const std::size_t column_count = table.rows.front().size();
  std::vector<std::size_t> natural(column_count, 0);
  for (const auto& row : table.rows) {
    for (std::size_t c = 0; c < row.size() && c < column_count; ++c) {
      natural[c] = std::max(natural[c], display_width(row[c]));
    }
  }
  const auto flex_floor = [&] {
    return spec.flex < 0 ? 0 : std::min(natural[spec.flex], kMinNameColumns);
  };
  // Columns of a group without the flex column, with its gaps and the indent.
  const auto fixed_cost = [&](const std::vector<std::size_t>& columns) {
    std::size_t cost = kWatchIndent + kWatchGap * (columns.size() - 1);
    for (std::size_t c : columns) {
      if (static_cast<std::ptrdiff_t>(c) != spec.flex) cost += natural[c];
    }
    return cost;
  };

  const std::vector<std::vector<std::size_t>> groups = watch_column_groups(
      column_count, spec.keys, width - std::min(width, flex_floor()), fixed_cost);

  std::string out;
  for (std::vector<std::size_t> columns : groups) {
    std::sort(columns.begin(), columns.end());
    std::vector<std::size_t> widths = natural;
    if (spec.flex >= 0) {
      const std::size_t cost = fixed_cost(columns);
      const std::size_t room = width > cost ? width - cost : 0;
      widths[spec.flex] = std::min(natural[spec.flex], std::max(room, flex_floor()));
    }
    if (!out.empty()) out += '\n';
    for (std::size_t r = 0; r < table.rows.size(); ++r) {
      std::string line(kWatchIndent, ' ');
      for (std::size_t k = 0; k < columns.size(); ++k) {
        const std::size_t c = columns[k];
        const bool last = k + 1 == columns.size();
        const bool right = c < table.align.size() && table.align[c] == Align::right;
        const std::string cell = static_cast<std::ptrdiff_t>(c) == spec.flex
                                     ? truncate_middle(table.rows[r][c], widths[c])
                                     : table.rows[r][c];
        const std::size_t pad = widths[c] - std::min(widths[c], display_width(cell));
        if (right) line.append(pad, ' ');
        if (r == 0) {
          line += palette.paint(cell, "1");
        } else if (static_cast<std::ptrdiff_t>(c) == spec.state) {
          line += palette.paint(cell, watch_state_sgr(cell));
        } else {
          line += cell;
        }
        if (!right && !last) line.append(pad, ' ');
        if (!last) line.append(kWatchGap, ' ');
      }
      while (!line.empty() && line.back() == ' ') line.pop_back();
      out += watch_clip(std::move(line), width);
      out += '\n';
    }
  }
  return out;
}

// "  label      text" lines no wider than `width`: the text breaks after its ", " and "; ", and a
// piece too long for a line on its own is shortened in the middle.
std::string watch_field_lines(const detail::StatField& field, std::size_t width,
                              const WatchPalette& palette) {
  std::vector<std::string> pieces;
  std::string_view rest = field.text;
  while (!rest.empty()) {
    std::size_t cut = rest.size();
    for (std::string_view separator : {", ", "; "}) {
      const std::size_t at = rest.find(separator);
      if (at != std::string_view::npos) cut = std::min(cut, at + separator.size());
    }
    pieces.emplace_back(rest.substr(0, cut));
    rest.remove_prefix(cut);
  }
  const std::size_t room = width > kWatchLabelColumns ? width - kWatchLabelColumns : 1;
  std::vector<std::string> lines{""};
  for (const std::string& piece : pieces) {
    if (!lines.back().empty() && display_width(lines.back()) + display_width(piece) > room + 1) {
      lines.emplace_back();  // +1: a trailing space of the separator may hang past the edge
    }
    lines.back() += piece;
  }
  std::string out;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    std::string text = lines[i];
    while (!text.empty() && text.back() == ' ') text.pop_back();
    text = truncate_middle(watch_printable(text), room);
    const std::string label = i == 0 ? field.label : "";
    const std::string padding(10 - std::min<std::size_t>(10, label.size()), ' ');
    out += fmt::format("  {}{} {}\n", field.alarm ? palette.paint(label, "1;31") : label, padding,
                       text);
  }
  return out;
}

std::string watch_heading(const std::string& text, const WatchPalette& palette, std::size_t width) {
  return palette.paint(watch_clip(text, width), "1") + "\n";
}

}  // namespace

std::string stat_watch_frame(const ChannelStats& s, const ChannelRates& r,
                             const WatchFrameStyle& style, const std::vector<GroupStats>& groups) {
  const WatchPalette palette{style.colour};
  const std::size_t width = std::max<std::size_t>(style.width, 40);

  const std::string right = watch_printable(style.clock);
  const std::string incarnation = fmt::format("  incarnation {}", incarnation_hex(s.incarnation));
  const std::size_t fixed =
      display_width("channel ") + incarnation.size() + 2 + display_width(right);
  const std::size_t name_room = width > fixed ? width - fixed : 0;
  const std::string left = fmt::format(
      "channel {}{}", truncate_middle(watch_printable(s.name), std::max<std::size_t>(name_room, 5)),
      incarnation);
  const std::size_t used = display_width(left) + display_width(right);
  std::string out = watch_clip(
      palette.paint(left, "1") + std::string(width > used + 2 ? width - used : 2, ' ') + right,
      width);
  out += '\n';

  for (const detail::StatField& f : detail::stat_fields(s, r))
    out += watch_field_lines(f, width, palette);

  out += '\n';
  out += watch_heading(detail::producers_heading(s), palette, width);
  if (!s.producers.empty()) {
    out += render_watch_table(detail::producer_table(s, r), WatchFit{{0}, -1, 2}, width, palette);
  }
  out += '\n';
  out += watch_heading(detail::subscribers_heading(s), palette, width);
  if (!s.subscribers.empty()) {
    out +=
        render_watch_table(detail::subscriber_table(s, r), WatchFit{{0, 1}, 1, 3}, width, palette);
  }
  detail::StatTable latency = detail::latency_table(s, r, true);
  if (latency.rows.size() > 1) {
    out += '\n';
    out += watch_heading(detail::kLatencyHeading, palette, width);
    out += render_watch_table(std::move(latency), WatchFit{{0, 1}, 1, -1}, width, palette);
  }
  if (!groups.empty()) {
    out += '\n';
    out += watch_heading(detail::groups_heading(groups), palette, width);
    for (const GroupStats& g : groups) {
      out += watch_clip("  " + truncate_middle(watch_printable(detail::group_title(g)),
                                               width > 2 ? width - 2 : width),
                        width);
      out += '\n';
      for (const detail::StatField& f : detail::group_fields(g))
        out += watch_field_lines(f, width, palette);
      if (g.problem.empty() && !g.members.empty()) {
        out += render_watch_table(detail::group_member_table(g, s.sampled_ns),
                                  WatchFit{{0}, -1, 2}, width, palette);
      }
    }
  }
  if (!style.hint.empty()) {
    out += '\n';
    out += palette.paint(watch_clip(watch_printable(style.hint), width), "2");
    out += '\n';
  }
  return out;
}

}  // namespace shmbus::tools
