// The standard process_* metrics from /proc/self (prometheus-cpp has no
// process collector on Linux). Parsing is pure and tested on fixed text;
// read_process() does the reads. Any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace beacon::metrics {

struct ProcessStats {
  double cpu_seconds = 0;         // utime + stime
  double resident_bytes = 0;      // rss pages * page size
  double virtual_bytes = 0;       // vsize
  double start_time_seconds = 0;  // since the Unix epoch
  double open_fds = 0;
  double max_fds = 0;  // soft RLIMIT_NOFILE
  double threads = 0;
};

// Fields of /proc/self/stat. `ticks` is sysconf(_SC_CLK_TCK), `page` the page
// size, `boot_time` the btime of /proc/stat (seconds since the epoch). False
// when the text is not a stat line.
bool parse_proc_stat(std::string_view stat, long ticks, long page, double boot_time,
                     ProcessStats& out);
// "btime N" of /proc/stat.
std::optional<double> parse_boot_time(std::string_view proc_stat);
// The soft "Max open files" of /proc/self/limits ("unlimited": nullopt).
std::optional<double> parse_max_open_files(std::string_view limits);

// Reads /proc/self (stat, limits, fd/). nullopt when /proc is not readable.
std::optional<ProcessStats> read_process();

}  // namespace beacon::metrics
