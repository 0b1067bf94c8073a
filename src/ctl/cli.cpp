// Argument parsing for bfdctl and bfd-beacon, and bfdctl's run loop.
#include "beacon/ctl/cli.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <ostream>
#include <thread>

#include "beacon/config/config.hpp"
#include "beacon/ctl/cli_ops.hpp"
#include "beacon/ctl/counters.hpp"
#include "beacon/ctl/format.hpp"
#include "cli_impl.hpp"

namespace beacon::ctl {
namespace {

using nlohmann::json;

// One "--name VALUE" / "--name=VALUE" / "--flag" scanner shared by both programs.
class ArgScanner {
 public:
  explicit ArgScanner(const std::vector<std::string>& args) : args_(args) {}

  bool done() const { return i_ >= args_.size(); }
  const std::string& peek() const { return args_[i_]; }
  void skip() { ++i_; }

  // If the current argument is `name` or `name=...`, consumes it (and its value
  // when `takes_value`). Returns false if it is another argument. Sets error_
  // for a missing value or a value given to a flag.
  bool match(std::string_view name, bool takes_value, std::string* value = nullptr) {
    const std::string& a = args_[i_];
    if (a == name) {
      ++i_;
      if (!takes_value) return true;
      if (i_ >= args_.size()) {
        error_ = "option " + std::string(name) + " requires a value";
        return true;
      }
      *value = args_[i_++];
      return true;
    }
    if (a.size() > name.size() && a.compare(0, name.size(), name) == 0 && a[name.size()] == '=') {
      ++i_;
      if (!takes_value) {
        error_ = "option " + std::string(name) + " does not take a value";
        return true;
      }
      *value = a.substr(name.size() + 1);
      return true;
    }
    return false;
  }

  std::string error_;

 private:
  const std::vector<std::string>& args_;
  std::size_t i_ = 0;
};

bool parse_diag(const std::string& text, int& diag) {
  if (text.empty() || text.size() > 3 ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return false;
  }
  std::from_chars(text.data(), text.data() + text.size(), diag);
  return diag >= 0 && diag <= 31;
}

CtlParse usage_error(std::string message) {
  return CtlParse{std::nullopt, std::move(message)};
}

struct CtlOptions {
  std::optional<std::string> socket, timeout, diag, peer, group, interval, count;
  bool json = false, all = false, help = false, wait = false;
  int selectors = 0;
  std::vector<std::string> positionals;
};

// Collects options anywhere on the line; the command decides which it allows.
std::string scan_ctl(const std::vector<std::string>& args, CtlOptions& o) {
  ArgScanner s(args);
  bool only_positionals = false;
  while (!s.done()) {
    const std::string& a = s.peek();
    if (only_positionals || a.empty() || a[0] != '-' || a == "-") {
      o.positionals.push_back(a);
      s.skip();
      continue;
    }
    std::string v;
    if (a == "--") {
      only_positionals = true;
      s.skip();
    } else if (a == "-h" || a == "--help") {
      o.help = true;
      s.skip();
    } else if (s.match("--json", false)) {
      o.json = true;
    } else if (s.match("--wait", false)) {
      o.wait = true;
    } else if (s.match("--all", false)) {
      o.all = true;
      ++o.selectors;
    } else if (s.match("--socket", true, &v)) {
      o.socket = v;
    } else if (s.match("--timeout", true, &v)) {
      o.timeout = v;
    } else if (s.match("--diag", true, &v)) {
      if (o.diag) return "option --diag given twice";
      o.diag = v;
    } else if (s.match("--peer", true, &v)) {
      o.peer = v;
      ++o.selectors;
    } else if (s.match("--group", true, &v)) {
      o.group = v;
      ++o.selectors;
    } else if (s.match("--interval", true, &v)) {
      o.interval = v;
    } else if (s.match("--count", true, &v)) {
      o.count = v;
    } else {
      return "unknown option " + a;
    }
    if (!s.error_.empty()) return s.error_;
  }
  return {};
}

CtlParse build_set_state(CtlArgs& out, const CtlOptions& o) {
  if (o.positionals.size() < 2 || o.positionals[1] != "set-state") {
    return usage_error(o.positionals.size() < 2
                           ? "missing subcommand after 'session' (expected set-state)"
                           : "unknown subcommand 'session " + o.positionals[1] +
                                 "' (expected set-state)");
  }
  if (o.positionals.size() < 3) return usage_error("missing state (up, down or admin-down)");
  if (o.positionals.size() > 3) return usage_error("unexpected argument " + o.positionals[3]);
  const std::string& state = o.positionals[2];
  if (state != "up" && state != "down" && state != "admin-down") {
    return usage_error("invalid state '" + state + "' (expected up, down or admin-down)");
  }
  if (o.selectors == 0) return usage_error("one of --peer ADDR, --group NAME or --all is required");
  if (o.selectors > 1) return usage_error("give only one of --peer, --group or --all");
  json req{{"cmd", "session-set-state"}, {"state", state}};
  if (o.diag) {
    int diag = 0;
    if (!parse_diag(*o.diag, diag)) return usage_error("--diag must be an integer 0..31");
    if (state == "up") return usage_error("--diag cannot be used with 'up'");
    req["diag"] = diag;
  }
  if (o.all) req["all"] = true;
  if (o.peer) {
    if (o.peer->empty()) return usage_error("--peer needs an address");
    req["peer"] = *o.peer;
  }
  if (o.group) {
    if (o.group->empty()) return usage_error("--group needs a name");
    req["group"] = *o.group;
  }
  out.command = CtlArgs::Command::SetState;
  out.request = std::move(req);
  return CtlParse{out, {}};
}

}  // namespace

std::string ctl_usage() {
  return "usage: bfdctl [--socket PATH] [--json] [--timeout DUR] COMMAND\n"
         "\n"
         "commands:\n"
         "  sessions [--json]              list every BFD session\n"
         "  session set-state <up|down|admin-down> [--diag N] (--peer ADDR | --group NAME | "
         "--all)\n"
         "                                 hold sessions Down (diag 5) or AdminDown (diag 7);\n"
         "                                 'up' releases the hold\n"
         "  stats [--json]                 engine counters\n"
         "  counters [PEER] [--json]       per session: packets, drops, transitions, flaps\n"
         "  checks [--json]                health checks: state, latency, reason\n"
         "  groups [--json]                health groups: verdict, signal, reason\n"
         "  version                        bfdctl's version and the daemon's\n"
         "  sessions PEER                  only the session(s) whose peer is exactly PEER\n"
         "                                 (e.g. 198.18.0.1, fe80::1%veth0)\n"
         "  check-config FILE [--json]     check a configuration file with the daemon's parser\n"
         "                                 (no daemon needed): errors as file:line:column\n"
         "  watch [--interval DUR] [--count N]\n"
         "                                 live view of groups, sessions and checks (q quits);\n"
         "                                 periodic plain blocks when not on a terminal\n"
         "  reload [--wait] [--json]       re-read the daemon's configuration file; --wait:\n"
         "                                 until removed sessions are gone and timer changes\n"
         "                                 completed their Poll (at most 5 s)\n" +
         ops_usage() +
         "\n"
         "options:\n"
         "  --socket PATH   control socket (default " +
         std::string(kDefaultSocketPath) +
         ")\n"
         "  --json          print the daemon's JSON\n"
         "  --timeout DUR   give up after DUR, e.g. 500ms, 5s (default 5s)\n"
         "\n"
         "Colour only on a terminal, and never when NO_COLOR is set to a non-empty value.\n"
         "exit codes: 0 ok, 1 refused by the daemon, 2 usage error, 3 daemon unreachable\n";
}

CtlParse parse_ctl_args(const std::vector<std::string>& args) {
  CtlOptions o;
  if (std::string e = scan_ctl(args, o); !e.empty()) return usage_error(std::move(e));
  CtlArgs out;
  out.json = o.json;
  if (o.socket) {
    if (o.socket->empty()) return usage_error("--socket needs a path");
    out.socket = *o.socket;
  }
  if (o.timeout) {
    auto d = config::parse_duration(*o.timeout);
    if (!d || d->count() <= 0) {
      return usage_error("invalid --timeout '" + *o.timeout + "' (expected e.g. 500ms or 5s)");
    }
    out.timeout =
        std::max(std::chrono::milliseconds(1), std::chrono::ceil<std::chrono::milliseconds>(*d));
  }
  if (o.help || (!o.positionals.empty() && o.positionals[0] == "help")) {
    out.command = CtlArgs::Command::Help;
    return CtlParse{out, {}};
  }
  if (o.positionals.empty()) return usage_error("missing command");
  const std::string& cmd = o.positionals[0];
  if (cmd == "session") return build_set_state(out, o);

  if (o.selectors > 0 || o.diag) {
    return usage_error("--diag, --peer, --group and --all belong to 'session set-state'");
  }
  if (cmd == "counters") {
    if (o.positionals.size() > 2) return usage_error("unexpected argument " + o.positionals[2]);
    out.command = CtlArgs::Command::Counters;
    out.request = json{{"cmd", cmd}};
    if (o.positionals.size() == 2) {
      if (o.positionals[1].empty()) return usage_error("counters: PEER must not be empty");
      out.request["peer"] = o.positionals[1];
    }
    return CtlParse{out, {}};
  }
  if (o.wait && cmd != "reload") return usage_error("--wait belongs to 'reload'");
  if ((o.interval || o.count) && cmd != "watch") {
    return usage_error("--interval and --count belong to 'watch'");
  }
  if (cmd == "check-config") return build_check_config(out, o.positionals);
  if (cmd == "watch") return build_watch(out, o.positionals, o.interval, o.count);
  if (cmd == "sessions" && o.positionals.size() == 2) {
    if (std::string e = check_peer_filter(o.positionals[1]); !e.empty()) return usage_error(e);
    out.peer_filter = o.positionals[1];
  } else if (o.positionals.size() > 1) {
    return usage_error("unexpected argument " + o.positionals[1]);
  }
  if (cmd == "reload") {
    out.command = CtlArgs::Command::Reload;
    out.request = json{{"cmd", "reload"}, {"wait", o.wait}};
    return CtlParse{out, {}};
  }
  if (cmd == "sessions") {
    out.command = CtlArgs::Command::Sessions;
  } else if (cmd == "stats") {
    out.command = CtlArgs::Command::Stats;
  } else if (cmd == "version") {
    out.command = CtlArgs::Command::Version;
  } else if (cmd == "checks") {
    out.command = CtlArgs::Command::Checks;
  } else if (cmd == "groups") {
    out.command = CtlArgs::Command::Groups;
  } else {
    return usage_error("unknown command '" + cmd + "'");
  }
  out.request = json{{"cmd", cmd}};
  return CtlParse{out, {}};
}

int run_ctl(const std::vector<std::string>& args, const Transport& transport, std::ostream& out,
            std::ostream& err) {
  return run_ctl(args, transport, out, err, CtlEnv{});
}

int run_ctl(const std::vector<std::string>& args, const Transport& transport, std::ostream& out,
            std::ostream& err, const CtlEnv& env) {
  // status, maintenance, drain, undrain: their own options (cli_ops.hpp).
  if (is_ops_command(args)) {
    OpsEnv ops = default_ops_env();
    ops.tty = env.out_tty;
    ops.color = Style::detect(env.out_tty, env.no_color).colour;
    return run_ops_command(args, transport, out, err, ops);
  }
  CtlParse parsed = parse_ctl_args(args);
  if (!parsed.args) {
    err << "bfdctl: " << parsed.error << "\n\n" << ctl_usage();
    return kExitUsage;
  }
  const CtlArgs& a = *parsed.args;
  if (a.command == CtlArgs::Command::Help) {
    out << ctl_usage();
    return kExitOk;
  }
  if (a.command == CtlArgs::Command::Reload) {
    return run_reload(a, transport, out, err,
                      [](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); });
  }
  // Not needing the daemon: check-config works on a box where it is stopped.
  if (a.command == CtlArgs::Command::CheckConfig) return run_check_config(a, out, err);
  const Style style = Style::detect(env.out_tty, env.no_color);
  if (a.command == CtlArgs::Command::Watch) return run_watch(a, transport, out, err, env);
  ClientResult r = transport(a.socket, a.request, a.timeout);
  if (a.command == CtlArgs::Command::Version) return print_version(a, r, out, err);
  if (r.status != ClientResult::Status::Ok) {
    err << "bfdctl: " << r.error << "\n";
    return kExitUnreachable;
  }
  const json& resp = r.response;
  if (!resp.value("ok", false)) {
    auto it = resp.find("error");
    std::string msg = it != resp.end() && it->is_string() ? it->get<std::string>()
                                                          : "request refused (no reason given)";
    err << "bfdctl: " << msg << "\n";
    return kExitRefused;
  }
  auto field = [&resp](const char* name, json fallback) {
    auto it = resp.find(name);
    return it == resp.end() ? fallback : *it;
  };
  auto pretty = [](const json& j) { return j.dump(2, ' ', false, json::error_handler_t::replace); };
  switch (a.command) {
    case CtlArgs::Command::Sessions: {
      json list = field("sessions", json::array());
      if (!a.peer_filter.empty()) {
        list = filter_sessions(list, a.peer_filter);
        if (list.empty()) {
          err << "bfdctl: no session with peer " << a.peer_filter << "\n";
          return kExitRefused;
        }
      }
      out << (a.json ? pretty(list) + "\n" : format_sessions_table(list, style));
      break;
    }
    case CtlArgs::Command::Stats: {
      json stats = field("stats", json::object());
      out << (a.json ? pretty(stats) + "\n" : format_stats(stats));
      break;
    }
    case CtlArgs::Command::Checks: {
      json list = field("checks", json::array());
      out << (a.json ? pretty(list) + "\n" : format_checks_table(list, style));
      break;
    }
    case CtlArgs::Command::Groups: {
      json list = field("groups", json::array());
      out << (a.json ? pretty(list) + "\n" : format_groups_table(list, style));
      break;
    }
    case CtlArgs::Command::Counters: {
      json body = resp;
      body.erase("ok");
      body.erase("id");
      out << (a.json ? pretty(body) + "\n" : format_counters(body));
      break;
    }
    case CtlArgs::Command::SetState:
      out << (a.json ? pretty(resp) + "\n" : format_set_state(resp, style) + "\n");
      break;
    case CtlArgs::Command::Version:
    case CtlArgs::Command::CheckConfig:
    case CtlArgs::Command::Watch:
      break;  // handled above
    case CtlArgs::Command::Help:
    case CtlArgs::Command::Reload:
      break;
  }
  return kExitOk;
}

// ---- bfd-beacon ----

bool valid_log_level(const std::string& name) {
  static constexpr std::array<std::string_view, 8> kLevels = {
      "trace", "debug", "info", "warn", "warning", "error", "critical", "off"};
  return std::find(kLevels.begin(), kLevels.end(), name) != kLevels.end();
}

std::string daemon_usage() {
  return "usage: bfd-beacon [--config FILE] [--check-config] [--log-level LEVEL]\n"
         "       bfd-beacon --version | --help\n"
         "\n"
         "  --config FILE      configuration file (default " +
         std::string(kDefaultConfigPath) +
         ")\n"
         "  --check-config     load the configuration, print errors as file:line:column: "
         "message,\n"
         "                     exit 0 if valid, 1 if not\n"
         "  --log-level LEVEL  trace, debug, info, warn, error, critical or off\n"
         "                     (overrides [daemon] log_level)\n"
         "  --version          print the version and exit\n"
         "\n"
         "Runs in the foreground; SIGTERM/SIGINT stop it after signalling every Up peer.\n";
}

DaemonParse parse_daemon_args(const std::vector<std::string>& args) {
  DaemonArgs out;
  ArgScanner s(args);
  auto fail = [](std::string m) { return DaemonParse{std::nullopt, std::move(m)}; };
  while (!s.done()) {
    const std::string& a = s.peek();
    std::string v;
    if (a == "-h" || a == "--help") {
      out.help = true;
      s.skip();
    } else if (a == "-c") {
      s.skip();
      if (s.done()) return fail("option -c requires a value");
      out.config = s.peek();
      s.skip();
    } else if (s.match("--config", true, &v)) {
      out.config = v;
    } else if (s.match("--check-config", false)) {
      out.check_config = true;
    } else if (s.match("--version", false)) {
      out.version = true;
    } else if (s.match("--log-level", true, &v)) {
      if (s.error_.empty() && !valid_log_level(v)) {
        return fail("invalid --log-level '" + v +
                    "' (expected trace, debug, info, warn, error, critical or off)");
      }
      out.log_level = v;
    } else if (!a.empty() && a[0] == '-') {
      return fail("unknown option " + a);
    } else {
      return fail("unexpected argument " + a);
    }
    if (!s.error_.empty()) return fail(s.error_);
  }
  if (out.config.empty()) return fail("--config needs a file name");
  return DaemonParse{out, {}};
}

}  // namespace beacon::ctl
