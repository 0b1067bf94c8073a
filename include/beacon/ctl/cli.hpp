// Command-line parsing for both programs, and the whole of bfdctl as a
// library function (the mains only adapt argv and real I/O).
//
// bfdctl [--socket PATH] [--json] [--timeout DUR] COMMAND
//   sessions [PEER] [--json]
//   session set-state <up|down|admin-down> [--diag N] (--peer ADDR | --group G | --all)
//   stats [--json]
//   checks [--json]     health checks (issue 3)
//   groups [--json]     health groups: verdict, signal, reason
//   version             bfdctl's and the daemon's version
//   check-config FILE   the daemon's parser, locally (no daemon needed)
//   watch [--interval DUR] [--count N] [--json]   live view (JSON lines with --json)
//   reload [--wait] [--json]  re-read the daemon's configuration file
//   counters [PEER] [--json]  packets, drops, transitions, flaps per session
// Exit codes: 0 ok, 1 refused (daemon answered ok:false), 2 usage,
// 3 daemon unreachable.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "beacon/ctl/client.hpp"

namespace beacon::ctl {

inline constexpr int kExitOk = 0;
inline constexpr int kExitRefused = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitUnreachable = 3;

inline constexpr const char* kDefaultSocketPath = "/run/bfd-beacon/control.sock";
inline constexpr const char* kDefaultConfigPath = "/etc/bfd-beacon/beacon.toml";

// ---- bfdctl ----

struct CtlArgs {
  enum class Command {
    Help,
    Sessions,
    SetState,
    Stats,
    Version,
    Checks,
    Groups,
    Reload,
    CheckConfig,
    Watch,
    Counters
  } command = Command::Help;
  std::string socket = kDefaultSocketPath;
  bool json = false;
  std::chrono::milliseconds timeout{5000};
  nlohmann::json request;                    // the protocol request for the command (not for Help)
  std::string peer_filter;                   // sessions PEER: exact peer text ("" shows all)
  std::string config_file;                   // check-config FILE
  std::chrono::milliseconds interval{1000};  // watch --interval
  std::optional<std::uint64_t> count;        // watch --count: frames, then exit
};

struct CtlParse {
  std::optional<CtlArgs> args;  // set on success
  std::string error;            // usage error message otherwise (exit 2)
};

CtlParse parse_ctl_args(const std::vector<std::string>& args);  // args without argv[0]
std::string ctl_usage();

// Sends one request, returns the result. Tests inject a fake.
using Transport = std::function<ClientResult(const std::string& socket, const nlohmann::json& req,
                                             std::chrono::milliseconds timeout)>;

// bfdctl reload (cli_reload.cpp): sends `a.request`, prints what changed,
// the warnings and the errors; with --wait follows reload-status until the
// reload settled, at most kReloadWaitLimit. `sleep` waits between polls
// (tests pass a no-op). Exit 0 applied (and settled), 1 invalid file,
// refused or not settled in time, 3 unreachable.
inline constexpr std::chrono::milliseconds kReloadWaitLimit{5000};
int run_reload(const CtlArgs& a, const Transport& transport, std::ostream& out, std::ostream& err,
               const std::function<void(std::chrono::milliseconds)>& sleep);
// Human form of a reload response (exposed for tests).
std::string format_reload(const nlohmann::json& resp);

// What bfdctl needs of its process besides arguments and streams. The
// defaults describe a plain pipe with no environment (no colour, no
// terminal), which is what tests get unless they say otherwise.
struct CtlEnv {
  bool out_tty = false;                 // `out` is a terminal (colour allowed)
  std::optional<std::string> no_color;  // value of NO_COLOR; nullopt when unset
  // watch's terminal: both must be terminal file descriptors for the live
  // view (raw input for `q`, the alternate screen, the window size); -1
  // otherwise, and watch prints plain periodic blocks.
  int tty_in_fd = -1;
  int tty_out_fd = -1;
  // watch without a terminal waits with this between blocks (null: sleeps).
  std::function<void(std::chrono::milliseconds)> sleep;
  // Wall clock for watch's timestamps (null: the system clock).
  std::function<std::chrono::system_clock::time_point()> now;

  // The real process: isatty(1), NO_COLOR, fds 0/1 when both are terminals.
  static CtlEnv from_process();
};

// The whole bfdctl: parse, send, print. Returns the exit code. The first form
// runs with CtlEnv{} (no colour, no terminal).
int run_ctl(const std::vector<std::string>& args, const Transport& transport, std::ostream& out,
            std::ostream& err);
int run_ctl(const std::vector<std::string>& args, const Transport& transport, std::ostream& out,
            std::ostream& err, const CtlEnv& env);

// ---- bfd-beacon ----

struct DaemonArgs {
  std::string config = kDefaultConfigPath;
  bool check_config = false;
  bool version = false;
  bool help = false;
  std::optional<std::string> log_level;  // overrides [daemon] log_level
};

struct DaemonParse {
  std::optional<DaemonArgs> args;
  std::string error;  // usage error (exit 2)
};

DaemonParse parse_daemon_args(const std::vector<std::string>& args);  // without argv[0]
std::string daemon_usage();
// spdlog level names accepted by --log-level and [daemon] log_level.
bool valid_log_level(const std::string& name);

}  // namespace beacon::ctl
