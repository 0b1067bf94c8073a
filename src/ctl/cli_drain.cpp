// bfdctl status / maintenance / drain / undrain. See cli_ops.hpp.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <ostream>
#include <sstream>
#include <thread>

#include "beacon/config/config.hpp"
#include "beacon/ctl/cli_ops.hpp"
#include "beacon/ctl/style.hpp"

namespace beacon::ctl {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr std::chrono::milliseconds kRequestTimeout{5000};
constexpr std::chrono::milliseconds kPollTty{250};
constexpr std::chrono::milliseconds kPollPlain{1000};
// How long --wait waits for the daemon's first count before calling it
// "no way to count".
constexpr double kFirstCountGrace = 3.0;

volatile std::sig_atomic_t g_interrupted = 0;
extern "C" void on_sigint(int) {
  g_interrupted = 1;
}

struct OpsArgs {
  std::string command;  // status | maintenance | drain | undrain
  std::string state;    // maintenance: on | off
  std::string socket = kDefaultSocketPath;
  bool json = false;
  std::optional<std::string> group, reason;
  bool wait = false;
  std::optional<std::chrono::milliseconds> timeout;  // drain: wait limit; else request limit
  std::uint64_t until = 0;
  bool until_given = false;
};

std::optional<std::chrono::milliseconds> parse_ms(const std::string& text) {
  auto d = config::parse_duration(text);
  if (!d || d->count() <= 0) return std::nullopt;
  return std::max(std::chrono::milliseconds(1), std::chrono::ceil<std::chrono::milliseconds>(*d));
}

// Returns "" or a usage error.
std::string parse_ops(const std::vector<std::string>& args, OpsArgs& a) {
  std::vector<std::string> pos;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& s = args[i];
    auto value = [&](const std::string& name, std::string& out) -> std::string {
      if (s.size() > name.size() && s.compare(0, name.size() + 1, name + "=") == 0) {
        out = s.substr(name.size() + 1);
        return {};
      }
      if (i + 1 >= args.size()) return "option " + name + " requires a value";
      out = args[++i];
      return {};
    };
    auto is = [&](const std::string& name) {
      return s == name || s.compare(0, name.size() + 1, name + "=") == 0;
    };
    std::string v, e;
    if (s.empty() || s[0] != '-') {
      pos.push_back(s);
    } else if (s == "--json") {
      a.json = true;
    } else if (s == "--wait") {
      a.wait = true;
    } else if (is("--socket")) {
      if (!(e = value("--socket", v)).empty()) return e;
      if (v.empty()) return "--socket needs a path";
      a.socket = v;
    } else if (is("--group")) {
      if (!(e = value("--group", v)).empty()) return e;
      if (v.empty()) return "--group needs a name";
      a.group = v;
    } else if (is("--reason")) {
      if (!(e = value("--reason", v)).empty()) return e;
      a.reason = v;
    } else if (is("--timeout")) {
      if (!(e = value("--timeout", v)).empty()) return e;
      a.timeout = parse_ms(v);
      if (!a.timeout) return "invalid --timeout '" + v + "' (expected e.g. 500ms, 30s, 5m)";
    } else if (is("--until-conns")) {
      if (!(e = value("--until-conns", v)).empty()) return e;
      if (v.empty() || v.size() > 12 || v.find_first_not_of("0123456789") != std::string::npos) {
        return "--until-conns needs a number of connections (0 or more)";
      }
      a.until = std::stoull(v);
      a.until_given = true;
    } else {
      return "unknown option " + s;
    }
  }
  if (pos.empty()) return "missing command";
  a.command = pos[0];
  std::size_t expected = 1;
  if (a.command == "maintenance") {
    if (pos.size() < 2) return "maintenance needs 'on' or 'off'";
    a.state = pos[1];
    if (a.state != "on" && a.state != "off") {
      return "invalid maintenance state '" + a.state + "' (expected on or off)";
    }
    expected = 2;
  }
  if (pos.size() > expected) return "unexpected argument " + pos[expected];
  const bool drain = a.command == "drain";
  if (!drain && (a.wait || a.until_given)) return "--wait and --until-conns belong to 'drain'";
  if (drain && !a.wait && a.timeout) return "--timeout with 'drain' needs --wait";
  if (drain && !a.wait && a.until_given) return "--until-conns with 'drain' needs --wait";
  if (a.command == "status" && (a.group || a.reason)) {
    return "--group and --reason do not apply to 'status'";
  }
  if (a.command == "undrain" && a.reason) return "--reason does not apply to 'undrain'";
  if (a.command == "maintenance" && a.state == "off" && a.reason) {
    return "--reason applies to 'maintenance on' only";
  }
  return {};
}

std::string str(const json& j, const char* key, const std::string& fallback = "-") {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (it->is_string()) return it->get<std::string>();
  return it->dump();
}

std::string seconds_text(double s) {
  if (s < 0) s = 0;
  std::ostringstream o;
  if (s < 60) {
    o << static_cast<long long>(std::llround(s)) << "s";
  } else {
    const auto total = static_cast<long long>(std::llround(s));
    o << total / 60 << "m" << (total % 60 < 10 ? "0" : "") << total % 60 << "s";
  }
  return o.str();
}

std::string ms_text(std::chrono::milliseconds d) {
  return seconds_text(std::chrono::duration<double>(d).count());
}

Colour signal_colour(const std::string& s) {
  if (s == "up") return Colour::Green;
  if (s == "mixed" || s == "init") return Colour::Yellow;
  return Colour::Red;
}

std::string maintenance_line(const json& m) {
  std::string t = str(m, "scope") + ": " + (m.value("drain", false) ? "drain" : "maintenance") +
                  " by " + str(m, "user");
  if (m.contains("uid") && m["uid"].is_number()) t += " (uid " + m["uid"].dump() + ")";
  t += " since " + str(m, "since") + ", origin " + str(m, "origin");
  if (!str(m, "reason", "").empty()) t += ", reason: " + str(m, "reason");
  return t;
}

std::string connections_text(const json& d) {
  if (!d.is_object()) return "-";
  if (!d.contains("connections") || d["connections"].is_null()) {
    return "unknown (" + str(d, "reason", "no count") + ")";
  }
  std::string t = d["connections"].dump() + " current connections";
  if (d.contains("age_ms") && d["age_ms"].is_number()) {
    t += " (counted " + std::to_string(d["age_ms"].get<double>() / 1000.0).substr(0, 4) + "s ago";
    if (d.contains("source") && d["source"].is_object()) {
      const json& src = d["source"];
      t += " on " + str(src, "socket") + " via " + str(src, "from");
      // Only a restricted count ([drain] frontends) is worth a mention.
      if (auto f = src.find("frontends"); f != src.end() && f->is_array()) {
        std::string names;
        for (const auto& n : *f) {
          if (n.is_string()) names += (names.empty() ? "" : ",") + n.get<std::string>();
        }
        if (!names.empty()) t += ", frontends " + names;
      }
    }
    t += ")";
  }
  return t;
}

void print_response(const json& resp, bool as_json, std::ostream& out) {
  if (as_json) out << resp.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
}

int refused(const json& resp, std::ostream& err) {
  auto it = resp.find("error");
  err << "bfdctl: "
      << (it != resp.end() && it->is_string() ? it->get<std::string>()
                                              : "request refused (no reason given)")
      << "\n";
  return kExitRefused;
}

std::string change_text(const OpsArgs& a, const json& resp) {
  const std::string scope = str(resp, "scope", "all");
  const std::string what = scope == "all" ? "all sessions" : "group " + scope;
  std::string t;
  if (a.command == "drain") {
    t = "drain started for " + what;
  } else if (a.command == "undrain") {
    t = "drain ended, maintenance off for " + what;
  } else {
    t = "maintenance " + a.state + " for " + what;
  }
  t += " (" + str(resp, "sessions_in_maintenance", "0") + " sessions in maintenance)";
  if (resp.value("persisted", false)) t += "; recorded in " + str(resp, "state_file");
  t += "\n";
  if (resp.contains("note")) t += "note: " + str(resp, "note") + "\n";
  return t;
}

// --wait: poll drain-status until the target, a timeout or Ctrl-C.
int wait_drain(const OpsArgs& a, const Transport& transport, std::ostream& out, std::ostream& err,
               const OpsEnv& env) {
  if (env.begin_wait) env.begin_wait();
  const auto t0 = env.now();
  const auto poll = env.tty ? kPollTty : kPollPlain;
  DrainProgress progress;
  auto elapsed = [&] { return std::chrono::duration<double>(env.now() - t0).count(); };
  bool live = false;  // a \r line is on the screen
  auto end_live = [&] {
    if (live) out << "\n";
    live = false;
  };
  const json req{{"cmd", "drain-status"}};
  auto interrupted = [&] {
    if (!env.interrupted || !env.interrupted()) return false;
    end_live();
    err << "bfdctl: interrupted: maintenance stays on (bfdctl undrain returns to rotation)\n";
    return true;
  };
  for (std::uint64_t i = 0;; ++i) {
    if (interrupted()) return kExitRefused;
    ClientResult r = transport(a.socket, req, kRequestTimeout);
    // Ctrl-C may also have cut the request short (EINTR): it is still Ctrl-C.
    if (interrupted()) return kExitRefused;
    if (r.status != ClientResult::Status::Ok) {
      end_live();
      err << "bfdctl: " << r.error << " (maintenance stays on)\n";
      return kExitUnreachable;
    }
    if (!r.response.value("ok", false)) {
      end_live();
      return refused(r.response, err);
    }
    const json& d = r.response;
    const double t = elapsed();
    const bool have = d.contains("connections") && d["connections"].is_number_integer() &&
                      d["connections"].get<std::int64_t>() >= 0;
    if (!have) {
      if (d.value("pending", false) && t < kFirstCountGrace) {
        env.sleep(kPollTty);  // the first count is due within a few hundred ms
        continue;
      }
      end_live();
      err << "bfdctl: cannot follow the drain: " << str(d, "reason", "no connection count")
          << "; maintenance is on\n";
      return kExitRefused;
    }
    const auto n = d["connections"].get<std::uint64_t>();
    progress.add(t, n);
    if (a.json) {
      out << json{{"elapsed_s", t}, {"connections", n}}.dump() << "\n";
    } else if (env.tty) {
      out << "\r" << progress.line(t, a.until) << "\x1b[K" << std::flush;
      live = true;
    } else {
      out << progress.line(t, a.until) << "\n" << std::flush;
    }
    if (n <= a.until) {
      end_live();
      if (!a.json) {
        out << "drained: " << n << " connections (target " << a.until << ") after "
            << seconds_text(t) << ", from " << progress.first() << "\n";
      }
      return kExitOk;
    }
    if (a.timeout && t * 1000.0 >= static_cast<double>(a.timeout->count())) {
      end_live();
      err << "bfdctl: timeout after " << ms_text(*a.timeout) << " with " << n
          << " connections left (target " << a.until << "); maintenance stays on\n";
      return kExitRefused;
    }
    env.sleep(poll);
  }
}

}  // namespace

// ================================================================ progress

void DrainProgress::add(double t, std::uint64_t n) {
  if (!any_) first_ = n;
  any_ = true;
  window_.push_back({t, n});
  while (window_.size() > 8 || (window_.size() > 2 && t - window_.front().t > 5.0)) {
    window_.pop_front();
  }
}

std::optional<double> DrainProgress::rate() const {
  if (window_.size() < 2) return std::nullopt;
  const double dt = window_.back().t - window_.front().t;
  if (dt <= 0) return std::nullopt;
  return (static_cast<double>(window_.front().n) - static_cast<double>(window_.back().n)) / dt;
}

std::optional<double> DrainProgress::eta(std::uint64_t target) const {
  auto r = rate();
  auto n = last();
  if (!n) return std::nullopt;
  if (*n <= target) return 0.0;
  if (!r || *r <= 0) return std::nullopt;
  return static_cast<double>(*n - target) / *r;
}

std::optional<std::uint64_t> DrainProgress::last() const {
  if (window_.empty()) return std::nullopt;
  return window_.back().n;
}

std::string DrainProgress::line(double elapsed, std::uint64_t target) const {
  std::ostringstream o;
  o << "connections " << (last() ? std::to_string(*last()) : "?") << " (target " << target << ")";
  if (auto r = rate()) {
    o.setf(std::ios::fixed);
    o.precision(1);
    if (*r >= 0) {
      o << "  falling " << *r << "/s";
    } else {
      o << "  rising " << -*r << "/s";
    }
  } else {
    o << "  rate -";
  }
  if (auto e = eta(target)) {
    o << "  ETA " << seconds_text(*e);
  } else {
    o << "  ETA -";
  }
  o << "  elapsed " << seconds_text(elapsed);
  return o.str();
}

// ================================================================ status

std::string format_status(const json& s, bool color) {
  const Style style{color};
  std::string out;
  const bool in = s.value("in_rotation", false);
  out += "bfd-beacon: " +
         style.paint(in ? "IN ROTATION" : "OUT OF ROTATION",
                     in ? Colour::BoldGreen : Colour::BoldRed) +
         (str(s, "summary") == "in rotation" ? std::string() : " - " + str(s, "summary")) + "\n";
  if (s.contains("sessions")) {
    out += "sessions: " + str(s["sessions"], "up") + "/" + str(s["sessions"], "total") + " up\n";
  }
  out += "\n";
  Table g;
  g.add({"GROUP", "SIGNAL", "UP/TOTAL", "VERDICT", "MAINTENANCE", "WHY NOT"});
  Table c;
  c.add({"CHECK", "GROUP", "STATE", "LAST", "LATENCY", "SINCE", "REASON"});
  bool any_check = false;
  for (const auto& grp : s.value("groups", json::array())) {
    std::string why;
    for (const auto& w : grp.value("why_not", json::array())) {
      why += (why.empty() ? "" : "; ") + (w.is_string() ? w.get<std::string>() : w.dump());
    }
    const std::string signal = str(grp, "signal");
    std::string maint = "-";
    if (grp.contains("maintenance") && grp["maintenance"].is_object()) {
      const json& m = grp["maintenance"];
      maint = (m.value("drain", false) ? "drain " : "on ") + str(m, "scope") + " (" +
              str(m, "origin") + ")";
    }
    const std::string verdict = str(grp, "verdict");
    std::string counts = "-";
    if (grp.contains("sessions")) {
      counts = str(grp["sessions"], "up") + "/" + str(grp["sessions"], "total");
    }
    const Colour verdict_c =
        verdict == "healthy" ? Colour::Green : (verdict == "-" ? Colour::None : Colour::Red);
    g.add({str(grp, "name"), style.paint(signal, signal_colour(signal)), counts,
           style.paint(verdict, verdict_c),
           style.paint(maint, maint == "-" ? Colour::None : Colour::Yellow),
           why.empty() ? "-" : why});
    for (const auto& ch : grp.value("checks", json::array())) {
      any_check = true;
      std::string lat = "-";
      if (ch.contains("latency_ms") && ch["latency_ms"].is_number()) {
        std::ostringstream o;
        o.setf(std::ios::fixed);
        o.precision(1);
        o << ch["latency_ms"].get<double>() << "ms";
        lat = o.str();
      }
      const std::string st = str(ch, "state");
      c.add({str(ch, "name"), str(grp, "name"),
             style.paint(st, st == "pass" ? Colour::Green : Colour::Red), str(ch, "last_status"),
             lat, str(ch, "since"), str(ch, "last_reason")});
    }
  }
  out += g.render();
  if (any_check) out += "\n" + c.render();
  out += "\nmaintenance:";
  const json maint = s.value("maintenance", json::array());
  if (maint.empty()) {
    out += " off\n";
  } else {
    out += "\n";
    for (const auto& m : maint) out += "  " + maintenance_line(m) + "\n";
  }
  if (s.contains("state_file") && s["state_file"].value("damaged", false)) {
    out += "  state file " + str(s["state_file"], "path") +
           " is damaged: failing closed (maintenance on)\n";
  }
  if (s.contains("drain") && s["drain"].is_object()) {
    const json& d = s["drain"];
    if (d.value("draining", false)) {
      // A drain the daemon restored from its state file after a restart.
      bool restored = false;
      for (const auto& x : d.value("drains", json::array())) {
        restored = restored || (x.is_object() && str(x, "origin") == "state-file");
      }
      out += std::string("drain: in progress") +
             (restored ? " (restored from the state file)" : "") + ", " + connections_text(d) +
             "\n";
    } else {
      out += "drain: not in progress";
      if (d.contains("connections") && d["connections"].is_number()) {
        out += " (" + connections_text(d) + ")";
      }
      out += "\n";
    }
  }
  return out;
}

// ================================================================ commands

OpsEnv default_ops_env() {
  OpsEnv e;
  e.now = [] { return Clock::now(); };
  e.sleep = [](std::chrono::milliseconds d) {
    // Small steps so Ctrl-C is seen promptly.
    const auto end = Clock::now() + d;
    while (Clock::now() < end && !g_interrupted) {
      std::this_thread::sleep_for(
          std::min<Clock::duration>(std::chrono::milliseconds(50), end - Clock::now()));
    }
  };
  e.interrupted = [] { return g_interrupted != 0; };
  e.begin_wait = [] {
    struct sigaction sa {};
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGINT, &sa, nullptr);
  };
  e.tty = ::isatty(STDOUT_FILENO) == 1;
  const char* nc = std::getenv("NO_COLOR");
  e.color = e.tty && (nc == nullptr || *nc == '\0');
  return e;
}

bool is_ops_command(const std::vector<std::string>& args) {
  // The first word that is neither an option nor an option's value.
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& s = args[i];
    if (s == "--socket" || s == "--timeout") {
      ++i;
      continue;
    }
    if (!s.empty() && s[0] == '-') continue;
    return s == "status" || s == "maintenance" || s == "drain" || s == "undrain";
  }
  return false;
}

std::string ops_usage() {
  return "  status [--json]                is this box in rotation, and why not\n"
         "  maintenance on|off [--group G] [--reason TEXT]\n"
         "                                 take all sessions (or group G) out of rotation,\n"
         "                                 or back; survives restarts (state file)\n"
         "  drain [--group G] [--reason TEXT] [--wait] [--timeout DUR] [--until-conns N]\n"
         "                                 maintenance on at once; --wait follows HAProxy's\n"
         "                                 current connections down to N (default 0);\n"
         "                                 --timeout limits the wait (maintenance stays on)\n"
         "  undrain [--group G]            end the drain: maintenance off\n";
}

int run_ops_command(const std::vector<std::string>& args, const Transport& transport,
                    std::ostream& out, std::ostream& err, const OpsEnv& env) {
  OpsArgs a;
  if (std::string e = parse_ops(args, a); !e.empty()) {
    err << "bfdctl: " << e << "\n\n" << ctl_usage();
    return kExitUsage;
  }
  const auto request_timeout =
      a.command == "drain" ? kRequestTimeout : a.timeout.value_or(kRequestTimeout);
  json req{{"cmd", a.command}};
  if (a.command == "maintenance") req["state"] = a.state;
  if (a.group) req["group"] = *a.group;
  if (a.reason) req["reason"] = *a.reason;
  ClientResult r = transport(a.socket, req, request_timeout);
  if (r.status != ClientResult::Status::Ok) {
    err << "bfdctl: " << r.error << "\n";
    return kExitUnreachable;
  }
  const json& resp = r.response;
  if (!resp.value("ok", false)) {
    if (a.json) print_response(resp, true, out);
    return refused(resp, err);
  }
  if (a.command == "status") {
    if (a.json) {
      print_response(resp, true, out);
    } else {
      out << format_status(resp, env.color);
    }
    return kExitOk;
  }
  if (a.json && !a.wait) {
    print_response(resp, true, out);
  } else if (!a.json) {
    out << change_text(a, resp);
  }
  if (a.command != "drain") return kExitOk;
  const json d = resp.value("drain", json::object());
  const bool countable = d.contains("source") && !d["source"].is_null();
  if (!a.wait) {
    if (!a.json) {
      if (!countable) {
        out << "note: " << str(d, "reason", "no way to count connections") << "\n";
      } else if (d.contains("connections") && d["connections"].is_number()) {
        out << "connections now: " << d["connections"].dump() << "\n";
      }
    }
    return kExitOk;
  }
  if (!countable) {
    err << "bfdctl: cannot follow the drain: " << str(d, "reason", "no way to count connections")
        << "; maintenance is on\n";
    return kExitRefused;
  }
  return wait_drain(a, transport, out, err, env);
}

}  // namespace beacon::ctl
