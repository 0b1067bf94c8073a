// bfdctl and bfd-beacon argument parsing, and bfdctl's exit codes with a fake
// transport.
#include "beacon/ctl/cli.hpp"

#include <gtest/gtest.h>

#include <cctype>
#include <cstdio>
#include <fstream>
#include <sstream>

namespace beacon::ctl {
namespace {

using nlohmann::json;
using Args = std::vector<std::string>;

struct UsageCase {
  Args args;
  const char* error_contains;
};

// Every one of these is a usage error: exit 2, nothing sent.
TEST(CtlArgs, UsageErrors) {
  const std::vector<UsageCase> cases = {
      {{}, "missing command"},
      {{"--json"}, "missing command"},
      {{"frobnicate"}, "unknown command 'frobnicate'"},
      {{"sessions", "extra"}, "unexpected argument extra"},
      {{"--bogus", "sessions"}, "unknown option --bogus"},
      {{"sessions", "-x"}, "unknown option -x"},
      {{"--socket"}, "--socket requires a value"},
      {{"--socket=", "sessions"}, "--socket needs a path"},
      {{"--timeout", "5", "sessions"}, "invalid --timeout"},
      {{"--timeout", "0s", "sessions"}, "invalid --timeout"},
      {{"--timeout", "soon", "sessions"}, "invalid --timeout"},
      {{"--json=yes", "sessions"}, "does not take a value"},
      {{"sessions", "--all"}, "belong to 'session set-state'"},
      {{"stats", "--diag", "5"}, "belong to 'session set-state'"},
      {{"session"}, "missing subcommand"},
      {{"session", "show"}, "unknown subcommand 'session show'"},
      {{"session", "set-state"}, "missing state"},
      {{"session", "set-state", "init", "--all"}, "invalid state 'init'"},
      {{"session", "set-state", "down"}, "one of --peer ADDR, --group NAME or --all is required"},
      {{"session", "set-state", "down", "--all", "--group", "web"}, "only one of"},
      {{"session", "set-state", "down", "--peer", "198.18.0.1", "--peer", "198.18.0.2"},
       "only one of"},
      {{"session", "set-state", "down", "--all", "--all"}, "only one of"},
      {{"session", "set-state", "down", "--peer"}, "--peer requires a value"},
      {{"session", "set-state", "down", "--peer", ""}, "--peer needs an address"},
      {{"session", "set-state", "down", "--group="}, "--group needs a name"},
      {{"session", "set-state", "down", "--all", "--diag", "32"}, "0..31"},
      {{"session", "set-state", "down", "--all", "--diag", "-1"}, "0..31"},
      {{"session", "set-state", "down", "--all", "--diag", "x"}, "0..31"},
      {{"session", "set-state", "down", "--all", "--diag", "5", "--diag", "6"}, "twice"},
      {{"session", "set-state", "up", "--all", "--diag", "0"}, "--diag cannot be used with 'up'"},
      {{"session", "set-state", "down", "now", "--all"}, "unexpected argument now"},
  };
  for (const auto& c : cases) {
    std::string joined;
    for (const auto& a : c.args) joined += "[" + a + "]";
    SCOPED_TRACE(joined);
    CtlParse p = parse_ctl_args(c.args);
    EXPECT_FALSE(p.args);
    EXPECT_NE(p.error.find(c.error_contains), std::string::npos) << p.error;

    int calls = 0;
    std::ostringstream out, err;
    int code = run_ctl(
        c.args,
        [&calls](const std::string&, const json&, std::chrono::milliseconds) {
          ++calls;
          return ClientResult{};
        },
        out, err);
    EXPECT_EQ(code, kExitUsage);
    EXPECT_EQ(calls, 0);
    EXPECT_NE(err.str().find("usage: bfdctl"), std::string::npos);
  }
}

struct GoodCase {
  Args args;
  CtlArgs::Command command;
  json request;
};

TEST(CtlArgs, ValidCommandsBuildProtocolRequests) {
  using C = CtlArgs::Command;
  const std::vector<GoodCase> cases = {
      {{"sessions"}, C::Sessions, {{"cmd", "sessions"}}},
      {{"sessions", "--json"}, C::Sessions, {{"cmd", "sessions"}}},
      {{"--json", "stats"}, C::Stats, {{"cmd", "stats"}}},
      {{"version"}, C::Version, {{"cmd", "version"}}},
      {{"session", "set-state", "down", "--all"},
       C::SetState,
       {{"cmd", "session-set-state"}, {"state", "down"}, {"all", true}}},
      {{"session", "set-state", "admin-down", "--group", "web"},
       C::SetState,
       {{"cmd", "session-set-state"}, {"state", "admin-down"}, {"group", "web"}}},
      {{"session", "set-state", "down", "--diag", "3", "--peer=fe80::1%veth0"},
       C::SetState,
       {{"cmd", "session-set-state"}, {"state", "down"}, {"diag", 3}, {"peer", "fe80::1%veth0"}}},
      {{"session", "set-state", "up", "--peer", "198.18.0.1"},
       C::SetState,
       {{"cmd", "session-set-state"}, {"state", "up"}, {"peer", "198.18.0.1"}}},
  };
  for (const auto& c : cases) {
    CtlParse p = parse_ctl_args(c.args);
    ASSERT_TRUE(p.args) << p.error;
    EXPECT_EQ(p.args->command, c.command);
    EXPECT_EQ(p.args->request, c.request);
  }
}

TEST(CtlArgs, GlobalOptions) {
  CtlParse p = parse_ctl_args({"--socket", "/tmp/x.sock", "--timeout", "250ms", "--json", "stats"});
  ASSERT_TRUE(p.args);
  EXPECT_EQ(p.args->socket, "/tmp/x.sock");
  EXPECT_EQ(p.args->timeout, std::chrono::milliseconds(250));
  EXPECT_TRUE(p.args->json);

  p = parse_ctl_args({"sessions"});
  ASSERT_TRUE(p.args);
  EXPECT_EQ(p.args->socket, "/run/bfd-beacon/control.sock");
  EXPECT_FALSE(p.args->json);

  p = parse_ctl_args({"--socket=/a b/c.sock", "--timeout=2s", "version"});
  ASSERT_TRUE(p.args);
  EXPECT_EQ(p.args->socket, "/a b/c.sock");
  EXPECT_EQ(p.args->timeout, std::chrono::seconds(2));
}

TEST(CtlArgs, HelpIsNotAnError) {
  for (const Args& a : {Args{"--help"}, Args{"-h"}, Args{"help"}, Args{"sessions", "--help"}}) {
    std::ostringstream out, err;
    EXPECT_EQ(run_ctl(a, nullptr, out, err), kExitOk);
    EXPECT_NE(out.str().find("usage: bfdctl"), std::string::npos);
  }
}

ClientResult ok_response(json body) {
  ClientResult r;
  r.status = ClientResult::Status::Ok;
  r.response = std::move(body);
  return r;
}

TEST(RunCtl, ExitCodesFollowTheResponse) {
  std::ostringstream out, err;
  auto reply = [](ClientResult r) {
    return [r](const std::string&, const json&, std::chrono::milliseconds) { return r; };
  };

  EXPECT_EQ(
      run_ctl({"session", "set-state", "down", "--all"},
              reply(ok_response({{"ok", true}, {"matched", 4}, {"state", "down"}, {"diag", 5}})),
              out, err),
      kExitOk);
  EXPECT_EQ(out.str(), "4 sessions set to down (diag 5)\n");

  out.str("");
  EXPECT_EQ(run_ctl({"session", "set-state", "up", "--all"},
                    reply(ok_response({{"ok", true}, {"matched", 4}, {"state", "up"}})), out, err),
            kExitOk);
  EXPECT_EQ(out.str(), "4 sessions set to up\n");

  err.str("");
  EXPECT_EQ(
      run_ctl({"session", "set-state", "down", "--peer", "198.18.9.9"},
              reply(ok_response({{"ok", false}, {"error", "no session with peer 198.18.9.9"}})),
              out, err),
      kExitRefused);
  EXPECT_EQ(err.str(), "bfdctl: no session with peer 198.18.9.9\n");

  ClientResult down;
  down.status = ClientResult::Status::Unreachable;
  down.error = "cannot connect to control socket /run/x.sock: No such file or directory";
  err.str("");
  EXPECT_EQ(run_ctl({"--socket", "/run/x.sock", "stats"}, reply(down), out, err), kExitUnreachable);
  EXPECT_NE(err.str().find("/run/x.sock"), std::string::npos);

  ClientResult garbage;
  garbage.status = ClientResult::Status::BadResponse;
  garbage.error = "invalid response";
  EXPECT_EQ(run_ctl({"stats"}, reply(garbage), out, err), kExitUnreachable);
}

TEST(RunCtl, PassesSocketTimeoutAndRequestToTransport) {
  std::string seen_socket;
  json seen_req;
  std::chrono::milliseconds seen_timeout{};
  std::ostringstream out, err;
  run_ctl(
      {"--socket", "/s.sock", "--timeout", "1.5s", "sessions"},
      [&](const std::string& s, const json& r, std::chrono::milliseconds t) {
        seen_socket = s;
        seen_req = r;
        seen_timeout = t;
        return ok_response({{"ok", true}, {"sessions", json::array()}});
      },
      out, err);
  EXPECT_EQ(seen_socket, "/s.sock");
  EXPECT_EQ(seen_req, json({{"cmd", "sessions"}}));
  EXPECT_EQ(seen_timeout, std::chrono::milliseconds(1500));
}

TEST(RunCtl, JsonFlagPrintsTheDaemonsArray) {
  json sessions = json::array({{{"peer", "198.18.0.1"}, {"state", "Up"}}});
  std::ostringstream out, err;
  EXPECT_EQ(run_ctl(
                {"sessions", "--json"},
                [&](const std::string&, const json&, std::chrono::milliseconds) {
                  return ok_response({{"ok", true}, {"sessions", sessions}});
                },
                out, err),
            kExitOk);
  EXPECT_EQ(json::parse(out.str()), sessions);
}

TEST(RunCtl, SessionsPeerFiltersByExactPeerText) {
  json sessions = json::array({{{"peer", "198.18.0.1"}, {"state", "Up"}},
                               {{"peer", "fe80::1%veth0"}, {"state", "Down"}},
                               {{"peer", "198.18.0.10"}, {"state", "Up"}}});
  auto t = [&](const std::string&, const json&, std::chrono::milliseconds) {
    return ok_response({{"ok", true}, {"sessions", sessions}});
  };
  std::ostringstream out, err;
  EXPECT_EQ(run_ctl({"sessions", "198.18.0.1", "--json"}, t, out, err), kExitOk);
  EXPECT_EQ(json::parse(out.str()), json::array({sessions[0]}));  // not .10
  out.str("");
  EXPECT_EQ(run_ctl({"sessions", "fe80::1%veth0"}, t, out, err), kExitOk);
  EXPECT_NE(out.str().find("fe80::1%veth0"), std::string::npos);
  EXPECT_EQ(out.str().find("198.18.0.1"), std::string::npos);
  // The scope is part of the name: fe80::1 alone names no session here.
  out.str("");
  EXPECT_EQ(run_ctl({"sessions", "fe80::1"}, t, out, err), kExitRefused);
  EXPECT_EQ(err.str(), "bfdctl: no session with peer fe80::1\n");
  EXPECT_EQ(out.str(), "");
  for (const Args& bad : {Args{"sessions", "198.18.0.300"}, Args{"sessions", "a", "b"},
                          Args{"sessions", "198.18.0.1%veth0"}, Args{"sessions", "fe80::1%"}}) {
    EXPECT_EQ(run_ctl(bad, t, out, err), kExitUsage) << bad[1];
  }
}

TEST(RunCtl, VersionPrintsBothAndStillAnswersWithoutADaemon) {
  std::ostringstream out, err;
  auto t = [](const std::string&, const json&, std::chrono::milliseconds) {
    return ok_response(
        {{"ok", true}, {"daemon", "bfd-beacon"}, {"version", "9.9.9"}, {"protocol", 1}});
  };
  EXPECT_EQ(run_ctl({"version"}, t, out, err), kExitOk);
  EXPECT_EQ(out.str(),
            std::string("bfdctl ") + BEACON_VERSION + "\nbfd-beacon 9.9.9 (control protocol 1)\n");
  out.str("");
  EXPECT_EQ(run_ctl({"version", "--json"}, t, out, err), kExitOk);
  json j = json::parse(out.str());
  EXPECT_EQ(j.at("version"), "9.9.9");  // the daemon's fields, unchanged
  EXPECT_EQ(j.at("protocol"), 1);
  EXPECT_EQ(j.at("bfdctl_version"), BEACON_VERSION);

  auto down = [](const std::string&, const json&, std::chrono::milliseconds) {
    return ClientResult{ClientResult::Status::Unreachable, {}, "cannot connect to /x"};
  };
  out.str("");
  err.str("");
  EXPECT_EQ(run_ctl({"version"}, down, out, err), kExitUnreachable);
  EXPECT_EQ(out.str(), std::string("bfdctl ") + BEACON_VERSION + "\n");
  EXPECT_EQ(err.str(), "bfdctl: cannot connect to /x\n");
  out.str("");
  EXPECT_EQ(run_ctl({"version", "--json"}, down, out, err), kExitUnreachable);
  EXPECT_EQ(json::parse(out.str()), json({{"bfdctl_version", BEACON_VERSION}}));
}

class CheckConfig : public ::testing::Test {
 protected:
  std::string write(const std::string& text) {
    path_ = ::testing::TempDir() + "bfdctl_check_config_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".toml";
    std::ofstream(path_) << text;
    return path_;
  }
  void TearDown() override {
    if (!path_.empty()) std::remove(path_.c_str());
  }
  std::string path_;
};

int never_called(int& calls, const Args& args, std::ostream& out, std::ostream& err) {
  return run_ctl(
      args,
      [&calls](const std::string&, const json&, std::chrono::milliseconds) {
        ++calls;
        return ClientResult{};
      },
      out, err);
}

TEST_F(CheckConfig, ValidFileSaysOkWithASummaryWithoutTheDaemon) {
  const std::string f = write(
      "[[session]]\npeer = \"198.18.0.1\"\ngroup = \"web\"\n"
      "[[check]]\nname = \"maint\"\ntype = \"file\"\npath = \"/tmp/x\"\n"
      "[[group]]\nname = \"web\"\nchecks = [\"maint\"]\n");
  std::ostringstream out, err;
  int calls = 0;
  EXPECT_EQ(never_called(calls, {"check-config", f}, out, err), kExitOk) << err.str();
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(out.str(), f + ": OK\n1 session, 0 accept rules, 1 check, 1 group\n");
  EXPECT_EQ(err.str(), "");
  out.str("");
  EXPECT_EQ(never_called(calls, {"check-config", f, "--json"}, out, err), kExitOk);
  json j = json::parse(out.str());
  EXPECT_EQ(j.at("ok"), true);
  EXPECT_EQ(j.at("errors"), json::array());
  EXPECT_EQ(j.at("summary").at("sessions"), 1);
}

TEST_F(CheckConfig, ErrorsAreFileLineColumnOnStderr) {
  const std::string f =
      write("[[session]]\npeer = \"198.18.0.1\"\nbogus = 1\ndetect_multiplier = 0\n");
  std::ostringstream out, err;
  int calls = 0;
  EXPECT_EQ(never_called(calls, {"check-config", f}, out, err), kExitRefused);
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(out.str(), "");
  std::istringstream lines(err.str());
  std::string line;
  int n = 0;
  while (std::getline(lines, line)) {
    ++n;
    EXPECT_EQ(line.rfind(f + ":", 0), 0u) << line;
    // file:LINE:COLUMN: message
    std::string rest = line.substr(f.size() + 1);
    EXPECT_TRUE(std::isdigit(static_cast<unsigned char>(rest[0]))) << line;
    EXPECT_NE(rest.find(':'), std::string::npos) << line;
  }
  EXPECT_EQ(n, 2) << err.str();
  EXPECT_NE(err.str().find(f + ":3:1:"), std::string::npos) << err.str();
  EXPECT_NE(err.str().find("bogus"), std::string::npos);

  out.str("");
  EXPECT_EQ(never_called(calls, {"--json", "check-config", f}, out, err), kExitRefused);
  json j = json::parse(out.str());
  EXPECT_EQ(j.at("ok"), false);
  ASSERT_EQ(j.at("errors").size(), 2u);
  EXPECT_EQ(j["errors"][0].at("file"), f);
  EXPECT_EQ(j["errors"][0].at("line"), 3);
  EXPECT_EQ(j["errors"][0].at("column"), 1);
  EXPECT_TRUE(j["errors"][0].at("message").is_string());
}

TEST_F(CheckConfig, UnreadableFileAndUsage) {
  std::ostringstream out, err;
  int calls = 0;
  EXPECT_EQ(never_called(calls, {"check-config", "/nonexistent/beacon.toml"}, out, err),
            kExitRefused);
  EXPECT_NE(err.str().find("/nonexistent/beacon.toml: cannot open"), std::string::npos)
      << err.str();
  EXPECT_EQ(never_called(calls, {"check-config"}, out, err), kExitUsage);
  EXPECT_EQ(never_called(calls, {"check-config", "a", "b"}, out, err), kExitUsage);
  EXPECT_EQ(calls, 0);
}

TEST(RunCtl, ColourOnlyOnATerminalAndNeverInJson) {
  json sessions =
      json::array({{{"peer", "198.18.0.1"}, {"state", "Up"}, {"remote_state", "Down"}}});
  auto t = [&](const std::string&, const json& req, std::chrono::milliseconds) {
    if (req.at("cmd") == "groups") {
      return ok_response(
          {{"ok", true},
           {"groups",
            json::array(
                {{{"name", "web"}, {"verdict", "unhealthy"}, {"hold", "down"}, {"diag", 5}}})}});
    }
    return ok_response({{"ok", true}, {"sessions", sessions}});
  };
  CtlEnv tty;
  tty.out_tty = true;
  CtlEnv no_color = tty;
  no_color.no_color = "1";
  CtlEnv empty_no_color = tty;
  empty_no_color.no_color = "";
  std::ostringstream out, err;
  ASSERT_EQ(run_ctl({"sessions"}, t, out, err, tty), kExitOk);
  EXPECT_NE(out.str().find("\x1b[32mUp\x1b[0m"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("\x1b[31mDown\x1b[0m"), std::string::npos) << out.str();
  out.str("");
  ASSERT_EQ(run_ctl({"groups"}, t, out, err, tty), kExitOk);
  EXPECT_NE(out.str().find("\x1b[31munhealthy\x1b[0m"), std::string::npos) << out.str();
  out.str("");
  ASSERT_EQ(run_ctl({"sessions"}, t, out, err, empty_no_color), kExitOk);
  EXPECT_NE(out.str().find('\x1b'), std::string::npos);
  for (const CtlEnv& env : {no_color, CtlEnv{}}) {
    out.str("");
    ASSERT_EQ(run_ctl({"sessions"}, t, out, err, env), kExitOk);
    EXPECT_EQ(out.str().find('\x1b'), std::string::npos) << out.str();
  }
  out.str("");
  ASSERT_EQ(run_ctl({"sessions", "--json"}, t, out, err, tty), kExitOk);
  EXPECT_EQ(out.str().find('\x1b'), std::string::npos);
  EXPECT_EQ(json::parse(out.str()), sessions);
  // Same table either way, once the escapes are gone.
  std::ostringstream plain, coloured;
  run_ctl({"sessions"}, t, plain, err, CtlEnv{});
  run_ctl({"sessions"}, t, coloured, err, tty);
  std::string stripped = coloured.str();
  for (std::size_t p; (p = stripped.find('\x1b')) != std::string::npos;) {
    stripped.erase(p, stripped.find('m', p) - p + 1);
  }
  EXPECT_EQ(stripped, plain.str());
}

// ---- bfd-beacon ----

TEST(DaemonArgs, Defaults) {
  DaemonParse p = parse_daemon_args({});
  ASSERT_TRUE(p.args);
  EXPECT_EQ(p.args->config, "/etc/bfd-beacon/beacon.toml");
  EXPECT_FALSE(p.args->check_config);
  EXPECT_FALSE(p.args->log_level);
}

TEST(DaemonArgs, AllFlags) {
  DaemonParse p =
      parse_daemon_args({"--config", "/tmp/b.toml", "--check-config", "--log-level", "debug"});
  ASSERT_TRUE(p.args) << p.error;
  EXPECT_EQ(p.args->config, "/tmp/b.toml");
  EXPECT_TRUE(p.args->check_config);
  EXPECT_EQ(p.args->log_level, "debug");
  p = parse_daemon_args({"--config=/x.toml", "--version"});
  ASSERT_TRUE(p.args);
  EXPECT_EQ(p.args->config, "/x.toml");
  EXPECT_TRUE(p.args->version);
  p = parse_daemon_args({"-c", "/y.toml", "--help"});
  ASSERT_TRUE(p.args);
  EXPECT_EQ(p.args->config, "/y.toml");
  EXPECT_TRUE(p.args->help);
}

TEST(DaemonArgs, UsageErrors) {
  const std::vector<UsageCase> cases = {
      {{"--bogus"}, "unknown option --bogus"},
      {{"--config"}, "--config requires a value"},
      {{"-c"}, "-c requires a value"},
      {{"--config="}, "--config needs a file name"},
      {{"--log-level", "loud"}, "invalid --log-level 'loud'"},
      {{"--log-level"}, "--log-level requires a value"},
      {{"--check-config=yes"}, "does not take a value"},
      {{"beacon.toml"}, "unexpected argument beacon.toml"},
  };
  for (const auto& c : cases) {
    DaemonParse p = parse_daemon_args(c.args);
    EXPECT_FALSE(p.args) << c.error_contains;
    EXPECT_NE(p.error.find(c.error_contains), std::string::npos) << p.error;
  }
}

}  // namespace
}  // namespace beacon::ctl
