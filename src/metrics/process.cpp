// process_* metrics from /proc/self (see process.hpp).
#include "beacon/metrics/process.hpp"

#include <unistd.h>

#include <charconv>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

namespace beacon::metrics {
namespace {

std::string read_text(const char* path) {
  std::ifstream in(path);
  if (!in) return {};
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::optional<double> number(std::string_view s) {
  double v = 0;
  const auto [end, err] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (err != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace

bool parse_proc_stat(std::string_view stat, long ticks, long page, double boot_time,
                     ProcessStats& out) {
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so
  // the fields are counted from the last ')'.
  const auto close = stat.rfind(')');
  if (close == std::string_view::npos || ticks <= 0) return false;
  std::vector<std::string_view> f;  // f[0] is field 3 (state)
  std::string_view rest = stat.substr(close + 1);
  while (!rest.empty()) {
    const auto b = rest.find_first_not_of(" \n");
    if (b == std::string_view::npos) break;
    rest = rest.substr(b);
    const auto e = rest.find_first_of(" \n");
    f.push_back(rest.substr(0, e));
    rest = e == std::string_view::npos ? std::string_view() : rest.substr(e);
  }
  // Fields (1-based, proc(5)): 14 utime, 15 stime, 20 num_threads,
  // 22 starttime, 23 vsize, 24 rss.
  auto field = [&](std::size_t n) { return n - 3 < f.size() ? number(f[n - 3]) : std::nullopt; };
  const auto utime = field(14), stime = field(15), threads = field(20), start = field(22),
             vsize = field(23), rss = field(24);
  if (!utime || !stime || !threads || !start || !vsize || !rss) return false;
  const double hz = static_cast<double>(ticks);
  out.cpu_seconds = (*utime + *stime) / hz;
  out.threads = *threads;
  out.start_time_seconds = boot_time + *start / hz;
  out.virtual_bytes = *vsize;
  out.resident_bytes = *rss * static_cast<double>(page);
  return true;
}

std::optional<double> parse_boot_time(std::string_view proc_stat) {
  const auto at = proc_stat.find("\nbtime ");
  if (at == std::string_view::npos) return std::nullopt;
  std::string_view v = proc_stat.substr(at + 7);
  return number(v.substr(0, v.find('\n')));
}

std::optional<double> parse_max_open_files(std::string_view limits) {
  const auto at = limits.find("Max open files");
  if (at == std::string_view::npos) return std::nullopt;
  std::string_view v = limits.substr(at + 14);
  const auto b = v.find_first_not_of(' ');
  if (b == std::string_view::npos) return std::nullopt;
  v = v.substr(b);
  return number(v.substr(0, v.find(' ')));  // soft limit; "unlimited" is no number
}

std::optional<ProcessStats> read_process() {
  ProcessStats s;
  const auto boot = parse_boot_time(read_text("/proc/stat"));
  if (!parse_proc_stat(read_text("/proc/self/stat"), ::sysconf(_SC_CLK_TCK),
                       ::sysconf(_SC_PAGESIZE), boot.value_or(0), s)) {
    return std::nullopt;
  }
  if (auto m = parse_max_open_files(read_text("/proc/self/limits"))) s.max_fds = *m;
  std::error_code ec;
  std::size_t fds = 0;
  for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end;
       it.increment(ec)) {
    ++fds;
  }
  // The directory's own descriptor was open while counting.
  s.open_fds = static_cast<double>(fds > 0 ? fds - 1 : 0);
  return s;
}

}  // namespace beacon::metrics
