// Command-line parsing for both programs, and the whole of bfdctl as a
// library function (the mains only adapt argv and real I/O).
//
// bfdctl [--socket PATH] [--json] [--timeout DUR] COMMAND
//   sessions [--json]
//   session set-state <up|down|admin-down> [--diag N] (--peer ADDR | --group G | --all)
//   stats [--json]
//   checks [--json]     health checks (issue 3)
//   groups [--json]     health groups: verdict, signal, reason
//   version
//   counters [PEER] [--json]  packets, drops, transitions, flaps per session
// Exit codes: 0 ok, 1 refused (daemon answered ok:false), 2 usage,
// 3 daemon unreachable.
#pragma once

#include <chrono>
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
    Counters
  } command = Command::Help;
  std::string socket = kDefaultSocketPath;
  bool json = false;
  std::chrono::milliseconds timeout{5000};
  nlohmann::json request;  // the protocol request for the command (not for Help)
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

// The whole bfdctl: parse, send, print. Returns the exit code.
int run_ctl(const std::vector<std::string>& args, const Transport& transport, std::ostream& out,
            std::ostream& err);

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
