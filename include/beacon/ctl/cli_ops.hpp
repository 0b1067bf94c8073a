// bfdctl's operator commands: status, maintenance, drain, undrain.
//
//   bfdctl status [--json]
//   bfdctl maintenance on|off [--group G] [--reason TEXT] [--json]
//   bfdctl drain [--group G] [--reason TEXT] [--wait] [--timeout DUR] [--until-conns N] [--json]
//   bfdctl undrain [--group G] [--json]
//
// For drain, --timeout is how long --wait waits (default: no limit); each
// request to the daemon still has the usual 5 s limit.
//
// drain enters maintenance at once (the routers withdraw this box). With
// --wait it then follows HAProxy's current connections (the daemon's
// drain-status) until they are at or below N (default 0): on a terminal one
// progress line rewritten in place about 4 times a second (connections now,
// rate of fall, ETA, elapsed), otherwise one plain line per second. Exit 0
// when reached; 1 on --timeout, on Ctrl-C, or when the daemon has no way to
// count connections (maintenance stays on in every case, and the message
// says so).
//
// Clock, sleep, interruption and the terminal are injected (OpsEnv) so the
// progress logic is unit-tested without a terminal or real time.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "beacon/ctl/cli.hpp"

namespace beacon::ctl {

struct OpsEnv {
  std::function<std::chrono::steady_clock::time_point()> now;
  std::function<void(std::chrono::milliseconds)> sleep;
  // True once Ctrl-C was pressed (checked between polls).
  std::function<bool()> interrupted;
  // Called once before --wait starts polling (installs the SIGINT handler).
  std::function<void()> begin_wait;
  bool tty = false;    // stdout is a terminal: live progress line
  bool color = false;  // tty and NO_COLOR unset
};

// The real terminal, clock and SIGINT.
OpsEnv default_ops_env();

// True when the first command word is one of status, maintenance, drain,
// undrain (run_ctl hands those to run_ops_command).
bool is_ops_command(const std::vector<std::string>& args);

int run_ops_command(const std::vector<std::string>& args, const Transport& transport,
                    std::ostream& out, std::ostream& err, const OpsEnv& env);

// Usage lines of these commands, appended to bfdctl's usage.
std::string ops_usage();

// Connection counts over time: rate of fall and ETA. Pure.
class DrainProgress {
 public:
  // `t`: seconds since the drain wait began.
  void add(double t, std::uint64_t connections);
  // Connections lost per second over the last few seconds (up to 8 samples
  // within 5 s); nullopt with fewer than two samples or no time between them.
  // Negative when the count rises.
  std::optional<double> rate() const;
  // Seconds until `target` at the current rate; nullopt when not falling.
  std::optional<double> eta(std::uint64_t target) const;
  // "connections 12 (target 0)  falling 3.0/s  ETA 4s  elapsed 6s"
  std::string line(double elapsed, std::uint64_t target) const;
  std::optional<std::uint64_t> last() const;
  std::uint64_t first() const { return first_; }

 private:
  struct Point {
    double t;
    std::uint64_t n;
  };
  std::deque<Point> window_;
  std::uint64_t first_ = 0;
  bool any_ = false;
};

// Human form of the daemon's "status" answer (colour only when `color`).
std::string format_status(const nlohmann::json& status, bool color);

}  // namespace beacon::ctl
