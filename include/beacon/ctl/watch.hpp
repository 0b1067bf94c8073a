// `bfdctl watch`: one frame of the live view (groups, sessions, checks) as a
// pure function of the daemon's answers, the terminal size and the time, so
// the layout is unit-tested without a terminal. The loops that fetch and
// draw live in src/ctl/watch.cpp (plain periodic output) and
// src/ctl/watch_tty.cpp (terminal: alternate screen, raw input).
#pragma once

#include <chrono>
#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "beacon/ctl/style.hpp"

namespace beacon::ctl {

// One refresh worth of answers. A section whose request was refused carries
// its error and a null array.
struct WatchData {
  bool reachable = true;
  std::string error;  // why the daemon could not be reached (reachable == false)
  nlohmann::json groups, sessions, checks;
  std::string groups_error, sessions_error, checks_error;
};

struct FrameOptions {
  std::size_t rows = 0;  // terminal height; 0: no limit (plain output)
  std::size_t cols = 0;  // terminal width; 0: no limit
  Style style;
  std::chrono::system_clock::time_point now{};
  std::string source;        // shown on the first line: the control socket
  std::string refresh;       // "every 1s"
  bool interactive = false;  // adds "q: quit" to the first line
};

// The frame, one string per line without "\n". First line: timestamp,
// refresh, "(q: quit)" when interactive, source; second: a summary (counts by state) or "daemon
// unreachable, retrying: WHY". With a row limit, sections that do not fit are
// cut, largest first, each ending in "... N more <things>"; every line is cut
// to `cols` visible columns.
std::vector<std::string> render_watch_frame(const WatchData& data, const FrameOptions& opts);

// "2026-12-02 13:40:01Z" (UTC, seconds).
std::string utc_timestamp(std::chrono::system_clock::time_point t);

}  // namespace beacon::ctl
