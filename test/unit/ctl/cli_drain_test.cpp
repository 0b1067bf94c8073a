// bfdctl status / maintenance / drain / undrain with a fake daemon, a fake
// clock and fake sleep: progress lines, rate and ETA, exit codes.
#include <gtest/gtest.h>

#include <deque>
#include <sstream>

#include "beacon/ctl/cli_ops.hpp"

namespace beacon::ctl {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

// A scripted daemon: records requests; answers drain-status from `counts`
// (one per poll, the last one repeated).
struct FakeDaemon {
  std::vector<json> requests;
  std::deque<json> counts;
  json drain_answer = json{{"ok", true},
                           {"scope", "all"},
                           {"sessions_in_maintenance", 2},
                           {"persisted", true},
                           {"state_file", "/var/lib/bfd-beacon/maintenance.json"},
                           {"drain",
                            {{"draining", true},
                             {"source", {{"socket", "/run/haproxy.sock"}, {"from", "check s"}}},
                             {"connections", 4}}}};
  bool unreachable = false;

  Transport transport() {
    return [this](const std::string&, const json& req, std::chrono::milliseconds) {
      requests.push_back(req);
      ClientResult r;
      if (unreachable) {
        r.status = ClientResult::Status::Unreachable;
        r.error = "cannot connect to /run/x: No such file or directory";
        return r;
      }
      const std::string cmd = req["cmd"];
      if (cmd == "drain-status") {
        json c = counts.front();
        if (counts.size() > 1) counts.pop_front();
        r.response = json{{"ok", true}, {"draining", true}};
        if (c.is_null()) {
          r.response["connections"] = nullptr;
          r.response["reason"] = "haproxy socket /run/haproxy.sock: connect: refused";
        } else {
          r.response["connections"] = c;
        }
      } else if (cmd == "drain") {
        r.response = drain_answer;
      } else {
        r.response = json{{"ok", true},
                          {"scope", req.value("group", "all")},
                          {"sessions_in_maintenance", 1},
                          {"persisted", true},
                          {"state_file", "/s/maintenance.json"}};
      }
      return r;
    };
  }
};

struct FakeTerm {
  Clock::time_point t{};
  int sleeps = 0;
  bool interrupt_after_first = false;
  OpsEnv env(bool tty) {
    OpsEnv e;
    e.now = [this] { return t; };
    e.sleep = [this](std::chrono::milliseconds d) {
      t += d;
      ++sleeps;
    };
    e.interrupted = [this] { return interrupt_after_first && sleeps > 0; };
    e.tty = tty;
    e.color = false;
    return e;
  }
};

struct Run {
  int rc;
  std::string out, err;
};

Run run(FakeDaemon& d, FakeTerm& term, bool tty, const std::vector<std::string>& args) {
  std::ostringstream out, err;
  int rc = run_ops_command(args, d.transport(), out, err, term.env(tty));
  return {rc, out.str(), err.str()};
}

TEST(DrainProgress, RateAndEta) {
  DrainProgress p;
  EXPECT_FALSE(p.rate());
  p.add(0, 10);
  EXPECT_FALSE(p.rate());
  EXPECT_FALSE(p.eta(0));
  p.add(1, 8);
  p.add(2, 6);
  ASSERT_TRUE(p.rate());
  EXPECT_DOUBLE_EQ(*p.rate(), 2.0);
  ASSERT_TRUE(p.eta(0));
  EXPECT_DOUBLE_EQ(*p.eta(0), 3.0);
  EXPECT_DOUBLE_EQ(*p.eta(2), 2.0);
  EXPECT_EQ(p.line(2, 0), "connections 6 (target 0)  falling 2.0/s  ETA 3s  elapsed 2s");
  // The window forgets samples older than 5 s: the rate follows recent change.
  p.add(8, 6);
  p.add(9, 6);
  EXPECT_DOUBLE_EQ(*p.rate(), 0.0);
  EXPECT_FALSE(p.eta(0));
  p.add(10, 9);
  EXPECT_LT(*p.rate(), 0.0);
  EXPECT_NE(p.line(10, 0).find("rising"), std::string::npos);
  EXPECT_EQ(p.first(), 10u);
}

TEST(DrainWait, TtyRewritesOneLineAndEndsAtTheTarget) {
  FakeDaemon d;
  d.counts = {4, 4, 3, 2, 2, 1, 0};
  FakeTerm term;
  auto r = run(d, term, true, {"drain", "--wait", "--reason", "reboot"});
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(d.requests[0]["cmd"], "drain");
  EXPECT_EQ(d.requests[0]["reason"], "reboot");
  EXPECT_EQ(d.requests.size(), 8u);  // drain + 7 polls
  EXPECT_EQ(term.sleeps, 6);
  EXPECT_EQ(term.t - Clock::time_point{}, std::chrono::milliseconds(1500));  // 4 polls a second
  EXPECT_NE(r.out.find("\rconnections 4 (target 0)"), std::string::npos);
  EXPECT_NE(r.out.find("\rconnections 2 (target 0)  falling"), std::string::npos);
  EXPECT_NE(r.out.find("drained: 0 connections (target 0) after 2s, from 4"), std::string::npos);
  EXPECT_NE(r.out.find("drain started for all sessions"), std::string::npos);
}

TEST(DrainWait, PlainOutputOneLinePerSecondAndUntilConns) {
  FakeDaemon d;
  d.counts = {9, 7, 5, 3};
  FakeTerm term;
  auto r = run(d, term, false, {"drain", "--wait", "--until-conns", "5", "--group", "web"});
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(d.requests[0]["group"], "web");
  EXPECT_EQ(term.t - Clock::time_point{}, std::chrono::seconds(2));
  EXPECT_EQ(r.out.find('\r'), std::string::npos);
  EXPECT_NE(r.out.find("connections 9 (target 5)  rate -  ETA -  elapsed 0s\n"), std::string::npos);
  EXPECT_NE(r.out.find("connections 5 (target 5)  falling 2.0/s  ETA 0s  elapsed 2s\n"),
            std::string::npos);
}

TEST(DrainWait, TimeoutExitsOneAndSaysMaintenanceStaysOn) {
  FakeDaemon d;
  d.counts = {3};
  FakeTerm term;
  auto r = run(d, term, false, {"drain", "--wait", "--timeout", "3s"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("timeout after 3s with 3 connections left (target 0); maintenance stays on"),
            std::string::npos)
      << r.err;
  for (const auto& q : d.requests) EXPECT_NE(q["cmd"], "undrain");
}

TEST(DrainWait, NoWayToCountExitsOneOnlyWithWait) {
  FakeDaemon d;
  d.drain_answer["drain"] = json{{"draining", true},
                                 {"source", nullptr},
                                 {"connections", nullptr},
                                 {"reason", "no way to count connections: set [drain] ..."}};
  FakeTerm term;
  auto r = run(d, term, false, {"drain"});
  EXPECT_EQ(r.rc, 0);
  EXPECT_NE(r.out.find("note: no way to count connections"), std::string::npos);
  r = run(d, term, false, {"drain", "--wait"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("no way to count connections"), std::string::npos);
  EXPECT_NE(r.err.find("maintenance is on"), std::string::npos);
  EXPECT_EQ(d.requests.back()["cmd"], "drain");  // maintenance was entered first
}

TEST(DrainWait, CountFailureAndCtrlC) {
  FakeDaemon d;
  d.counts = {json(nullptr)};
  FakeTerm term;
  auto r = run(d, term, false, {"drain", "--wait"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("connect: refused"), std::string::npos);
  d.counts = {5};
  FakeTerm term2;
  term2.interrupt_after_first = true;
  r = run(d, term2, true, {"drain", "--wait"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("interrupted: maintenance stays on"), std::string::npos);
}

TEST(OpsCommands, ParseErrorsAreUsage) {
  FakeDaemon d;
  FakeTerm term;
  for (const std::vector<std::string>& args : {std::vector<std::string>{"maintenance"},
                                               {"maintenance", "maybe"},
                                               {"maintenance", "on", "extra"},
                                               {"status", "--wait"},
                                               {"undrain", "--reason", "x"},
                                               {"drain", "--until-conns", "-1"},
                                               {"drain", "--timeout", "soon", "--wait"},
                                               {"drain", "--timeout", "5s"},
                                               {"drain", "--until-conns", "5"},
                                               {"maintenance", "on", "--until-conns", "0"},
                                               {"maintenance", "on", "--bogus"},
                                               {"maintenance", "off", "--reason", "x"},
                                               {"maintenance", "on", "--group"}}) {
    auto r = run(d, term, false, args);
    EXPECT_EQ(r.rc, 2) << args.size() << " " << r.err;
  }
  EXPECT_TRUE(d.requests.empty());
  EXPECT_TRUE(is_ops_command({"--socket", "/x", "status"}));
  EXPECT_TRUE(is_ops_command({"drain", "--wait"}));
  EXPECT_FALSE(is_ops_command({"sessions"}));
  EXPECT_FALSE(is_ops_command({"--socket", "status", "sessions"}));
}

TEST(OpsCommands, MaintenanceRequestsAndExitCodes) {
  FakeDaemon d;
  FakeTerm term;
  auto r = run(d, term, false, {"maintenance", "on", "--group", "web", "--reason", "disk swap"});
  EXPECT_EQ(r.rc, 0);
  EXPECT_EQ(
      d.requests[0],
      (json{{"cmd", "maintenance"}, {"state", "on"}, {"group", "web"}, {"reason", "disk swap"}}));
  EXPECT_NE(r.out.find("maintenance on for group web"), std::string::npos);
  r = run(d, term, false, {"maintenance", "off", "--json"});
  EXPECT_EQ(r.rc, 0);
  EXPECT_EQ(json::parse(r.out)["ok"], true);
  r = run(d, term, false, {"undrain"});
  EXPECT_EQ(d.requests.back(), (json{{"cmd", "undrain"}}));
  d.unreachable = true;
  r = run(d, term, false, {"status"});
  EXPECT_EQ(r.rc, 3);
}

TEST(OpsCommands, RefusalIsExitOne) {
  FakeTerm term;
  Transport t = [](const std::string&, const json&, std::chrono::milliseconds) {
    ClientResult r;
    r.response =
        json{{"ok", false},
             {"applied", true},
             {"error", "maintenance is on for all sessions but will not survive a restart"}};
    return r;
  };
  std::ostringstream out, err;
  EXPECT_EQ(run_ops_command({"maintenance", "on"}, t, out, err, term.env(false)), 1);
  EXPECT_NE(err.str().find("will not survive a restart"), std::string::npos);
}

TEST(StatusFormat, TableAndMaintenanceLines) {
  json s = json::parse(R"({
    "ok": true, "in_rotation": false, "summary": "in maintenance: x",
    "sessions": {"up": 0, "total": 2},
    "groups": [{"name": "web", "signal": "down", "sessions": {"up": 0, "total": 2},
                "verdict": "healthy", "why_not": ["maintenance (all) by root"],
                "maintenance": {"scope": "all", "origin": "state-file", "drain": false},
                "checks": [{"name": "haproxy", "state": "pass", "last_status": "pass",
                            "latency_ms": 0.42, "since": "2026-12-02T14:00:00Z",
                            "last_reason": "pid 7, 0 connections"}]}],
    "maintenance": [{"scope": "all", "user": "root", "uid": 0, "since": "2026-12-02T14:00:00Z",
                     "origin": "state-file", "reason": "rack move", "drain": false}],
    "state_file": {"path": "/var/lib/bfd-beacon/maintenance.json", "damaged": false},
    "drain": {"draining": false, "connections": null}
  })");
  const std::string t = format_status(s, false);
  EXPECT_NE(t.find("OUT OF ROTATION - in maintenance: x"), std::string::npos) << t;
  EXPECT_NE(t.find("sessions: 0/2 up"), std::string::npos);
  EXPECT_NE(t.find("GROUP  SIGNAL  UP/TOTAL  VERDICT  MAINTENANCE"), std::string::npos) << t;
  EXPECT_NE(t.find("web    down    0/2       healthy  on all (state-file)"), std::string::npos)
      << t;
  EXPECT_NE(t.find("haproxy  web    pass   pass  0.4ms"), std::string::npos) << t;
  EXPECT_NE(t.find("all: maintenance by root (uid 0) since 2026-12-02T14:00:00Z, origin "
                   "state-file, reason: rack move"),
            std::string::npos)
      << t;
  EXPECT_EQ(t.find("\x1b["), std::string::npos);
  EXPECT_NE(format_status(s, true).find("\x1b[31;1mOUT OF ROTATION"), std::string::npos);
  // A drain restored from the state file after a restart says so.
  s["drain"] = json::parse(R"({"draining": true, "connections": 4, "age_ms": 100,
      "drains": [{"scope": "all", "origin": "state-file", "started": "2026-12-02T14:00:00Z"}],
      "source": {"socket": "/run/h.sock", "from": "[drain] haproxy_socket"}})");
  EXPECT_NE(format_status(s, false).find("drain: in progress (restored from the state file), 4 "
                                         "current connections"),
            std::string::npos)
      << format_status(s, false);
  s["drain"]["drains"][0]["origin"] = "command";
  EXPECT_EQ(format_status(s, false).find("restored"), std::string::npos);
  // In rotation: the headline says it once.
  s["in_rotation"] = true;
  s["summary"] = "in rotation";
  const std::string in = format_status(s, false);
  EXPECT_NE(in.find("bfd-beacon: IN ROTATION\n"), std::string::npos) << in;
}

}  // namespace
}  // namespace beacon::ctl
