// Walks the CLI11 tree once and writes the tables of a fixed bash function. The script's logic
// does not depend on the commands; only its case tables do.
#include "tools/bash_completion.hpp"

#include <algorithm>
#include <iterator>
#include <string_view>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

namespace shmbus::tools {
namespace {

// What can follow at one level of the tree: "" is the top level, "/journal/dump" a nested one.
struct CompletionLevel {
  std::string path;
  std::vector<std::string> subcommands;
  std::vector<std::string> options;  // every spelling: --count, -h
  // Options that take a value, each with the bash command completing it.
  std::vector<std::pair<std::string, std::string>> valued;
  bool takes_channel = false;  // a positional argument named "channel"
  std::vector<std::string> argument_choices;  // what positional arguments' validators list
};

// Words written into the script unquoted. Every name CLI11 accepts here is one of these; anything
// else (a choice with a space, say) is left out of the completions rather than quoted.
bool plain_word(std::string_view word) {
  return !word.empty() && std::all_of(word.begin(), word.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_' || c == '.' || c == ':' || c == '/';
  });
}

// The choices an IsMember validator lists, from the type name CLI11 shows in --help:
// "TEXT:{block,drop,spill}". Anything else (a range, a custom check) lists none.
std::vector<std::string> listed_choices(const CLI::Option& option) {
  const std::string type = option.get_type_name();
  const std::size_t open = type.find(":{");
  const std::size_t close = type.rfind('}');
  std::vector<std::string> choices;
  if (open == std::string::npos || close == std::string::npos || close < open) return choices;
  std::string_view list(type.data() + open + 2, close - open - 2);
  while (!list.empty()) {
    const std::size_t comma = list.find(',');
    const std::string_view choice = list.substr(0, comma);
    if (!plain_word(choice)) return {};
    choices.emplace_back(choice);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return choices;
}

// How an option's value is completed: the choices its validator lists; directories for a --dir;
// channel names for a --...channel or an option whose value is named CHANNEL (type_name); file
// names for any other text; nothing for a number.
std::string value_completion(const CLI::Option& option) {
  const std::vector<std::string> choices = listed_choices(option);
  if (!choices.empty()) {
    return fmt::format("COMPREPLY=($(compgen -W \"{}\" -- \"$cur\"))", fmt::join(choices, " "));
  }
  const std::string name = option.get_name(false, true);  // the long name, without dashes
  if (name == "dir" || name.ends_with("-dir") || option.get_type_name() == "DIR") {
    return "COMPREPLY=($(compgen -d -- \"$cur\")); compopt -o filenames 2>/dev/null";
  }
  if (name.ends_with("channel") || option.get_type_name() == "CHANNEL") {
    return "COMPREPLY=($(compgen -W \"$(_shmbus_channels)\" -- \"$cur\"))";
  }
  if (option.get_type_name() == "TEXT") return "compopt -o default 2>/dev/null";
  return ":";
}

void collect_levels(const CLI::App& app, const std::string& path,
                    std::vector<CompletionLevel>& levels) {
  CompletionLevel level;
  level.path = path;
  const auto subcommands = app.get_subcommands([](const CLI::App*) { return true; });
  for (const CLI::App* sub : subcommands) {
    if (plain_word(sub->get_name())) level.subcommands.push_back(sub->get_name());
  }
  for (const CLI::Option* option : app.get_options()) {
    if (option->get_positional()) {
      if (option->get_name() == "channel") level.takes_channel = true;
      for (std::string& choice : listed_choices(*option)) {
        level.argument_choices.push_back(std::move(choice));
      }
      continue;
    }
    std::vector<std::string> spellings;
    for (const std::string& name : option->get_lnames()) spellings.push_back("--" + name);
    for (const std::string& name : option->get_snames()) spellings.push_back("-" + name);
    const bool takes_value = option->get_expected_max() > 0;  // a flag expects none
    const std::string completion = takes_value ? value_completion(*option) : std::string();
    for (const std::string& spelling : spellings) {
      if (!plain_word(spelling)) continue;
      level.options.push_back(spelling);
      if (takes_value) level.valued.emplace_back(spelling, completion);
    }
  }
  levels.push_back(std::move(level));
  for (const CLI::App* sub : subcommands) {
    if (plain_word(sub->get_name())) {
      collect_levels(*sub, fmt::format("{}/{}", path, sub->get_name()), levels);
    }
  }
}

}  // namespace

std::string bash_completion_script(const CLI::App& root) {
  std::vector<CompletionLevel> levels;
  collect_levels(root, "", levels);

  std::string steps;    // "/journal|/journal/dump|..." : the subcommand paths
  std::string tables;   // per level: its subcommands, options and whether it takes a channel
  std::string values;   // per option that takes a value: how it is completed
  for (const CompletionLevel& level : levels) {
    if (!level.path.empty()) {
      fmt::format_to(std::back_inserter(steps), "{}\"{}\"", steps.empty() ? "" : "|", level.path);
    }
    fmt::format_to(std::back_inserter(tables),
                   "    \"{}\") subcommands=\"{}\" options=\"{}\" arguments=\"{}\" channel={} ;;\n",
                   level.path, fmt::join(level.subcommands, " "), fmt::join(level.options, " "),
                   fmt::join(level.argument_choices, " "), level.takes_channel ? 1 : 0);
    for (const auto& [option, completion] : level.valued) {
      fmt::format_to(std::back_inserter(values), "    \"{} {}\") {} ;;\n", level.path, option,
                     completion);
    }
  }

  return fmt::format(
      R"script(# bash completion for shmbus. Generated by `shmbus completion bash` from the command's own
# option tree; regenerate it rather than editing it.

# The channels of this host: every ring object /dev/shm/shmbus.NAME, without the control segments
# and creators' temporaries that share the prefix.
_shmbus_channels() {{
  local object
  for object in /dev/shm/shmbus.*; do
    [[ -e $object ]] || continue
    object=${{object#/dev/shm/shmbus.}}
    case $object in *.ctl.*|*.tmp.*) continue ;; esac
    printf '%s\n' "$object"
  done
}}

_shmbus() {{
  local cur=${{COMP_WORDS[COMP_CWORD]}} prev=
  # --option=value: bash splits at '=', so the word before the value is '='.
  if [[ $cur == "=" ]]; then
    cur=
    prev=${{COMP_WORDS[COMP_CWORD - 1]}}
  elif ((COMP_CWORD >= 2)) && [[ ${{COMP_WORDS[COMP_CWORD - 1]}} == "=" ]]; then
    prev=${{COMP_WORDS[COMP_CWORD - 2]}}
  elif ((COMP_CWORD >= 2)); then
    prev=${{COMP_WORDS[COMP_CWORD - 1]}}
  fi

  # The subcommand path so far: each word that names a subcommand of the level reached.
  local path= word
  local -i i
  for ((i = 1; i < COMP_CWORD; i++)); do
    word=${{COMP_WORDS[i]}}
    case "$path/$word" in
      {steps}) path="$path/$word" ;;
    esac
  done

  # The value of an option: its listed choices, or else file names (bash's default completion).
  COMPREPLY=()
  local -i is_value=1
  case "$path $prev" in
{values}    *) is_value=0 ;;
  esac
  ((is_value)) && return 0

  local subcommands= options= arguments=
  local -i channel=0
  case "$path" in
{tables}  esac
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$options" -- "$cur"))
  elif [[ -n $subcommands ]]; then
    COMPREPLY=($(compgen -W "$subcommands" -- "$cur"))
  elif ((channel)); then
    COMPREPLY=($(compgen -W "$(_shmbus_channels)" -- "$cur"))
  elif [[ -n $arguments ]]; then
    COMPREPLY=($(compgen -W "$arguments" -- "$cur"))
  fi
}}

complete -F _shmbus shmbus
)script",
      fmt::arg("steps", steps.empty() ? "\"\"" : steps), fmt::arg("values", values),
      fmt::arg("tables", tables));
}

}  // namespace shmbus::tools
