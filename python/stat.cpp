// shmbus.stat(channel): the document `shmbus stat --json CHANNEL` prints, as a dict. Both are
// built by tools::stat_json (tools/stat_json.cpp) from the same reads, so the fields cannot
// drift apart; the JSON text is parsed by Python's own json module.
#include <algorithm>
#include <chrono>
#include <thread>

#include <pybind11/stl.h>

#include "python/bindings.hpp"
#include "shmbus/group_consumer.hpp"
#include "shmbus/mapping_guard.hpp"
#include "shmbus/stats.hpp"
#include "tools/observe_format.hpp"
#include "tools/truncation.hpp"

namespace shmbus::python {
namespace {

struct StatRead {
  ChannelStats channel;
  std::vector<GroupStats> groups;
};

// Reads the channel and its consumer groups, as `shmbus stat` does (a truncated channel is an
// error, not a SIGBUS).
Result<StatRead> read_stat(const std::string& channel) {
  const detail::MappingGuard guard;
  auto stats = tools::read_guarded([&] { return read_channel_stats(channel); });
  if (!stats) return tl::unexpected(stats.error());
  auto groups = tools::read_guarded([&] { return read_group_stats(channel); });
  if (!groups) return tl::unexpected(groups.error());
  return StatRead{std::move(*stats), std::move(*groups)};
}

// Sleeps `interval` without the GIL, in slices between which signal handlers run (Ctrl-C).
void sleep_interruptibly(std::chrono::nanoseconds interval) {
  const auto deadline = std::chrono::steady_clock::now() + interval;
  for (;;) {
    const auto left = deadline - std::chrono::steady_clock::now();
    if (left <= std::chrono::nanoseconds(0)) return;
    {
      py::gil_scoped_release no_gil;
      std::this_thread::sleep_for(std::min<std::chrono::nanoseconds>(left, kSignalSlice));
    }
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
  }
}

py::object stat(const std::string& channel, double interval) {
  if (!(interval >= 0) || interval > 3600) throw py::value_error("interval must be 0 to 3600 seconds");
  const auto read = [&] {
    py::gil_scoped_release no_gil;
    return read_stat(channel);
  };
  Result<StatRead> first = read();
  std::optional<StatRead> previous;
  if (first && interval > 0) {
    sleep_interruptibly(std::chrono::nanoseconds(static_cast<std::int64_t>(interval * 1e9)));
    previous = std::move(*first);
    first = read();
  }
  if (!first) raise(first.error());
  std::string json;
  {
    py::gil_scoped_release no_gil;
    const tools::ChannelRates rates =
        tools::measure_rates(previous ? &previous->channel : nullptr, first->channel);
    json = tools::stat_json(first->channel, rates, first->groups);
  }
  return py::module_::import("json").attr("loads")(json);
}

}  // namespace

void bind_stat(py::module_& m) {
  m.def("stat", &stat, py::arg("channel"), py::kw_only(), py::arg("interval") = 0.0,
        "The channel's counters, producers, subscribers (lag, losses, latency), journaler and "
        "consumer groups: the fields of `shmbus stat --json CHANNEL` (docs/observability.md). "
        "With `interval` > 0 it reads twice that many seconds apart and fills in the rates.");
  m.def("channels", [] {
    py::gil_scoped_release no_gil;
    return list_channels();
  }, "The names of every channel on this host, sorted.");
}

}  // namespace shmbus::python
