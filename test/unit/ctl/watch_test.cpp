// bfdctl watch: the frame as a pure function of answers, size and time.
#include "beacon/ctl/watch.hpp"

#include <gtest/gtest.h>

#include <sstream>

#include "beacon/ctl/cli.hpp"

namespace beacon::ctl {
namespace {

using nlohmann::json;

json sessions(int n) {
  json list = json::array();
  for (int i = 0; i < n; ++i) {
    list.push_back({{"peer", "198.18.0." + std::to_string(i + 1)},
                    {"group", "web"},
                    {"state", i % 2 == 0 ? "Up" : "Down"},
                    {"remote_state", "Up"},
                    {"hold", "none"}});
  }
  return list;
}

WatchData sample(int n_sessions) {
  WatchData d;
  d.groups = json::array({{{"name", "web"}, {"verdict", "healthy"}, {"hold", "none"}}});
  d.sessions = sessions(n_sessions);
  d.checks = json::array({{{"name", "haproxy"}, {"type", "haproxy-http"}, {"state", "pass"}},
                          {{"name", "maint"}, {"type", "file"}, {"state", "pass"}}});
  return d;
}

FrameOptions at(std::size_t rows, std::size_t cols) {
  FrameOptions o;
  o.rows = rows;
  o.cols = cols;
  o.now = std::chrono::system_clock::time_point(std::chrono::seconds(1'796'220'001));
  o.source = "/run/bfd-beacon/control.sock";
  o.refresh = "every 1s";
  return o;
}

std::string joined(const std::vector<std::string>& lines) {
  std::string s;
  for (const auto& l : lines) s += l + "\n";
  return s;
}

TEST(WatchFrame, TimestampIsUtc) {
  EXPECT_EQ(utc_timestamp(std::chrono::system_clock::time_point(std::chrono::seconds(0))),
            "1970-01-01 00:00:00Z");
}

TEST(WatchFrame, UnlimitedFrameShowsEverySectionAndASummary) {
  auto lines = render_watch_frame(sample(3), at(0, 0));
  const std::string f = joined(lines);
  EXPECT_EQ(lines[0].rfind(utc_timestamp(at(0, 0).now), 0), 0u) << f;
  EXPECT_NE(lines[0].find("/run/bfd-beacon/control.sock"), std::string::npos);
  EXPECT_NE(lines[0].find("every 1s"), std::string::npos);
  EXPECT_EQ(lines[0].find("q: quit"), std::string::npos);  // not interactive
  EXPECT_EQ(lines[1], "1 groups: 1 healthy | 3 sessions: 2 Up, 1 Down | 2 checks: 2 pass");
  for (const char* s :
       {"GROUP", "VERDICT", "PEER", "SIGNAL(U/M)", "CHECK", "198.18.0.3", "haproxy-http"}) {
    EXPECT_NE(f.find(s), std::string::npos) << s << "\n" << f;
  }
  EXPECT_EQ(f.find("more"), std::string::npos) << f;
  // 2 head lines, 3 blank separators, 2+4+3 table lines.
  EXPECT_EQ(lines.size(), 2u + 3u + 2u + 4u + 3u) << f;
}

TEST(WatchFrame, RowsThatDoNotFitAreCutWithACount) {
  auto lines = render_watch_frame(sample(40), at(20, 0));
  const std::string f = joined(lines);
  EXPECT_LE(lines.size(), 20u) << f;
  EXPECT_GE(lines.size(), 19u) << f;  // the space is used, not wasted
  // Groups and checks are small and stay whole; the sessions give way.
  EXPECT_NE(f.find("healthy"), std::string::npos) << f;
  EXPECT_NE(f.find("maint"), std::string::npos) << f;
  const auto more = f.find("... ");
  ASSERT_NE(more, std::string::npos) << f;
  EXPECT_NE(f.find("more sessions"), std::string::npos) << f;
  // Shown + hidden = all 40.
  std::size_t shown = 0;
  for (const auto& l : lines) shown += l.rfind("198.18.0.", 0) == 0 ? 1 : 0;
  const std::size_t hidden = std::stoul(f.substr(more + 4));
  EXPECT_EQ(shown + hidden, 40u) << f;
}

TEST(WatchFrame, TinyTerminalNeverOverflows) {
  for (std::size_t rows : {1u, 2u, 3u, 5u, 8u}) {
    auto lines = render_watch_frame(sample(10), at(rows, 30));
    EXPECT_LE(lines.size(), rows);
    for (const auto& l : lines) EXPECT_LE(visible_width(l), 30u) << l;
  }
}

TEST(WatchFrame, LinesAreCutToTheWidthWithColourOn) {
  FrameOptions o = at(0, 40);
  o.style = Style{true};
  auto lines = render_watch_frame(sample(3), o);
  bool painted = false;
  for (const auto& l : lines) {
    EXPECT_LE(visible_width(l), 40u) << l;
    painted |= l.find("\x1b[32m") != std::string::npos;
  }
  EXPECT_TRUE(painted);
}

TEST(WatchFrame, NoColourWithoutStyle) {
  for (const auto& l : render_watch_frame(sample(3), at(0, 0))) {
    EXPECT_EQ(l.find('\x1b'), std::string::npos) << l;
  }
}

TEST(WatchFrame, UnreachableDaemonSaysRetrying) {
  WatchData d;
  d.reachable = false;
  d.error = "cannot connect to control socket /x: No such file or directory";
  auto lines = render_watch_frame(d, at(24, 80));
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[1].rfind("daemon unreachable, retrying: cannot connect", 0), 0u) << lines[1];
}

TEST(WatchFrame, RefusedSectionShowsItsError) {
  WatchData d = sample(1);
  d.checks = nullptr;
  d.checks_error = "permission denied: uid 1001 is not in read group bfd-beacon";
  const std::string f = joined(render_watch_frame(d, at(0, 0)));
  EXPECT_NE(f.find("checks: permission denied"), std::string::npos) << f;
}

TEST(WatchFrame, InteractiveFrameNamesTheQuitKey) {
  FrameOptions o = at(24, 80);
  o.interactive = true;
  EXPECT_NE(render_watch_frame(sample(1), o)[0].find("q: quit"), std::string::npos);
}

// ---- the plain loop, through run_ctl ----

ClientResult answer(const json& req, int n_sessions) {
  ClientResult r;
  r.status = ClientResult::Status::Ok;
  WatchData d = sample(n_sessions);
  const std::string cmd = req.at("cmd");
  r.response = {{"ok", true},
                {cmd, cmd == "groups"     ? d.groups
                      : cmd == "sessions" ? d.sessions
                                          : d.checks}};
  return r;
}

TEST(WatchLoop, PlainOutputPrintsCountBlocksWithTimestamps) {
  std::ostringstream out, err;
  CtlEnv env;
  int sleeps = 0;
  std::chrono::milliseconds slept{0};
  env.sleep = [&](std::chrono::milliseconds d) {
    ++sleeps;
    slept += d;
  };
  env.now = [] { return std::chrono::system_clock::time_point(std::chrono::seconds(60)); };
  std::vector<std::string> cmds;
  int code = run_ctl(
      {"watch", "--interval", "250ms", "--count", "3"},
      [&](const std::string&, const json& req, std::chrono::milliseconds) {
        cmds.push_back(req.at("cmd"));
        return answer(req, 2);
      },
      out, err, env);
  EXPECT_EQ(code, kExitOk) << err.str();
  EXPECT_EQ(sleeps, 2);
  EXPECT_EQ(slept, std::chrono::milliseconds(500));
  EXPECT_EQ(cmds.size(), 9u);
  const std::string s = out.str();
  std::size_t blocks = 0;
  for (std::size_t p = 0; (p = s.find("1970-01-01 00:01:00Z", p)) != std::string::npos; ++p) {
    ++blocks;
  }
  EXPECT_EQ(blocks, 3u) << s;
  EXPECT_NE(s.find("every 250ms"), std::string::npos) << s;
  EXPECT_EQ(s.find('\x1b'), std::string::npos);  // not a terminal: no escapes at all
}

TEST(WatchLoop, UnreachableDaemonKeepsTryingThenExits3) {
  std::ostringstream out, err;
  CtlEnv env;
  env.sleep = [](std::chrono::milliseconds) {};
  int calls = 0;
  int code = run_ctl(
      {"watch", "--count", "4"},
      [&](const std::string&, const json& req, std::chrono::milliseconds) {
        ++calls;
        // Up for the first refresh only, then gone.
        if (calls <= 3) return answer(req, 1);
        ClientResult r;
        r.status = ClientResult::Status::Unreachable;
        r.error = "cannot connect to control socket /s: Connection refused";
        return r;
      },
      out, err, env);
  EXPECT_EQ(code, kExitUnreachable);
  EXPECT_EQ(calls, 3 + 3);  // one failed request per later refresh
  std::string s = out.str();
  std::size_t retrying = 0;
  for (std::size_t p = 0; (p = s.find("daemon unreachable, retrying", p)) != std::string::npos;
       ++p) {
    ++retrying;
  }
  EXPECT_EQ(retrying, 3u) << s;
}

TEST(WatchLoop, BackAfterAnOutageExitsOk) {
  std::ostringstream out, err;
  CtlEnv env;
  env.sleep = [](std::chrono::milliseconds) {};
  int calls = 0;
  int code = run_ctl(
      {"watch", "--count", "2"},
      [&](const std::string&, const json& req, std::chrono::milliseconds) {
        if (++calls == 1) return ClientResult{ClientResult::Status::Unreachable, {}, "gone"};
        return answer(req, 1);
      },
      out, err, env);
  EXPECT_EQ(code, kExitOk);
}

TEST(WatchLoop, JsonPrintsOneObjectPerRefresh) {
  std::ostringstream out, err;
  CtlEnv env;
  env.sleep = [](std::chrono::milliseconds) {};
  env.tty_in_fd = 0;  // a terminal: --json still prints lines, never the live view
  env.tty_out_fd = 1;
  int calls = 0;
  int code = run_ctl(
      {"watch", "--json", "--count", "2"},
      [&](const std::string&, const json& req, std::chrono::milliseconds) {
        if (++calls > 3) return ClientResult{ClientResult::Status::Unreachable, {}, "gone"};
        return answer(req, 2);
      },
      out, err, env);
  EXPECT_EQ(code, kExitUnreachable);
  std::istringstream lines(out.str());
  std::string line;
  std::vector<json> docs;
  while (std::getline(lines, line)) docs.push_back(json::parse(line));
  ASSERT_EQ(docs.size(), 2u) << out.str();
  EXPECT_EQ(docs[0].at("reachable"), true);
  EXPECT_EQ(docs[0].at("sessions").size(), 2u);
  EXPECT_EQ(docs[0].at("groups")[0].at("verdict"), "healthy");
  EXPECT_EQ(docs[1].at("reachable"), false);
  EXPECT_EQ(docs[1].at("error"), "gone");
}

TEST(WatchArgs, IntervalAndCountAreValidated) {
  auto p = parse_ctl_args({"watch"});
  ASSERT_TRUE(p.args) << p.error;
  EXPECT_EQ(p.args->command, CtlArgs::Command::Watch);
  EXPECT_EQ(p.args->interval, std::chrono::milliseconds(1000));
  EXPECT_FALSE(p.args->count);
  p = parse_ctl_args({"watch", "--interval=2s", "--count", "5"});
  ASSERT_TRUE(p.args) << p.error;
  EXPECT_EQ(p.args->interval, std::chrono::milliseconds(2000));
  EXPECT_EQ(p.args->count, 5u);
  for (const auto& bad : std::vector<std::vector<std::string>>{{"watch", "--interval", "10ms"},
                                                               {"watch", "--interval", "2"},
                                                               {"watch", "--interval", "2h"},
                                                               {"watch", "--count", "0"},
                                                               {"watch", "--count", "-1"},
                                                               {"watch", "--count", "3x"},
                                                               {"watch", "now"},
                                                               {"sessions", "--interval", "1s"},
                                                               {"stats", "--count", "2"}}) {
    EXPECT_FALSE(parse_ctl_args(bad).args) << bad.back();
  }
}

}  // namespace
}  // namespace beacon::ctl
