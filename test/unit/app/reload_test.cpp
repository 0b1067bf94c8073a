// Reload orchestration with fake hooks: an invalid file changes nothing and
// reports file:line:column; a valid one is applied to engine and health in
// order between RELOADING=1 and READY=1; restart-only settings stay; stats
// count by result; the control commands; SIGHUPs fold into one queued run.
#include "beacon/app/reload.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <string>
#include <vector>

#include "beacon/ctl/protocol.hpp"
#include "config_test_support.hpp"

namespace beacon::app {
namespace {

using nlohmann::json;

constexpr const char* kGood = R"(
[daemon]
control_socket = "/run/a.sock"
[[session]]
peer = "198.18.0.1"
[[session]]
peer = "198.18.0.2"
)";

struct Fake {
  std::string file = kGood;
  std::vector<std::string> calls;
  std::vector<config::Config> engine_cfgs;
  engine::ReloadResult engine_result;
  health::ReconfigureResult health_result;
  engine::ReloadProgress progress;
  core::TimePoint clock{};
  std::string level;

  Fake() {
    engine_result.applied = true;
    health_result.applied = true;
  }

  ReloadHooks hooks() {
    ReloadHooks h;
    h.load = [this](const std::string& p) {
      calls.push_back("load " + p);
      return config::load_string(file, p);
    };
    h.engine = [this](const config::Config& c) {
      calls.push_back("engine");
      engine_cfgs.push_back(c);
      clock += core::Duration{1500};
      return engine_result;
    };
    h.progress = [this] { return progress; };
    h.health = [this](const config::Config&) {
      calls.push_back("health");
      return health_result;
    };
    h.access = [this](const config::Config& c) {
      calls.push_back("access " + c.daemon.admin_group);
    };
    h.log_level = [this](const std::string& l) {
      calls.push_back("log_level " + l);
      level = l;
    };
    h.reloading = [this] { calls.push_back("RELOADING=1"); };
    h.reloaded = [this] { calls.push_back("READY=1"); };
    h.now = [this] { return clock; };
    h.wall = [] {
      return std::chrono::system_clock::time_point(std::chrono::seconds(1'800'000'000));
    };
    return h;
  }
};

config::Config running() {
  return test::load_ok(kGood);
}

TEST(Reload, InvalidFileChangesNothingAndReportsPositions) {
  Fake f;
  f.file = "[daemon]\ncontrol_socket = 5\n[[session]]\npeer = \"not-an-address\"\n";
  Reloader r("/etc/beacon.toml", running(), f.hooks(), nullptr);
  const ReloadOutcome o = r.reload("SIGHUP");
  EXPECT_FALSE(o.ok);
  ASSERT_EQ(o.errors.size(), 2u);
  EXPECT_EQ(o.errors[0].rfind("/etc/beacon.toml:2:", 0), 0u) << o.errors[0];
  EXPECT_EQ(o.errors[1].rfind("/etc/beacon.toml:4:", 0), 0u) << o.errors[1];
  EXPECT_EQ(f.calls, std::vector<std::string>{"load /etc/beacon.toml"});  // nothing else
  EXPECT_EQ(r.stats().failed, 1u);
  EXPECT_EQ(r.stats().ok, 0u);
  EXPECT_FALSE(r.stats().last_ok);
  ASSERT_TRUE(r.stats().last_at);
  EXPECT_EQ(r.stats().last_message, o.errors[0]);
  EXPECT_EQ(r.running().sessions.size(), 2u);
}

TEST(Reload, ValidFileAppliedInOrderBetweenReloadingAndReady) {
  Fake f;
  f.file = std::string(kGood) + "[[session]]\npeer = \"198.18.0.3\"\n";
  f.engine_result.added = 1;
  f.engine_result.messages = {"session 198.18.0.3: added (group default)"};
  Reloader r("/etc/beacon.toml", running(), f.hooks(), nullptr);
  const ReloadOutcome o = r.reload("bfdctl");
  EXPECT_TRUE(o.ok) << (o.errors.empty() ? "" : o.errors[0]);
  const std::vector<std::string> want = {"load /etc/beacon.toml", "RELOADING=1", "engine", "health",
                                         "READY=1"};
  EXPECT_EQ(f.calls, want);
  EXPECT_EQ(o.summary.rfind("sessions: 1 added, 2 unchanged", 0), 0u) << o.summary;
  EXPECT_EQ(o.changes, f.engine_result.messages);
  EXPECT_EQ(o.duration, core::Duration{1500});
  EXPECT_EQ(r.stats().ok, 1u);
  EXPECT_TRUE(r.stats().last_ok);
  EXPECT_EQ(r.stats().last_duration, core::Duration{1500});
  EXPECT_EQ(r.running().sessions.size(), 3u);
  // A second reload of the same file: nothing differs.
  f.engine_result = engine::ReloadResult{};
  f.engine_result.applied = true;
  const ReloadOutcome again = r.reload("SIGHUP");
  EXPECT_TRUE(again.ok);
  EXPECT_TRUE(again.diff.empty());
  EXPECT_EQ(r.stats().ok, 2u);
}

// The after-reload hook runs once per attempt, ok or failed, after the
// stats count it (the metrics republish from there).
TEST(Reload, FinishedHookSeesTheCountedAttempt) {
  Fake f;
  ReloadHooks h = f.hooks();
  std::vector<std::pair<std::uint64_t, std::uint64_t>> seen;
  Reloader* self = nullptr;
  h.finished = [&] { seen.emplace_back(self->stats().ok, self->stats().failed); };
  Reloader r("/etc/beacon.toml", running(), std::move(h), nullptr);
  self = &r;
  EXPECT_TRUE(r.reload("bfdctl").ok);
  f.file = "[daemon]\ncontrol_socket = 5\n";
  EXPECT_FALSE(r.reload("SIGHUP").ok);
  f.file = kGood;
  f.engine_result.applied = false;
  EXPECT_FALSE(r.reload("SIGHUP").ok);
  const std::vector<std::pair<std::uint64_t, std::uint64_t>> want = {{1, 0}, {1, 1}, {1, 2}};
  EXPECT_EQ(seen, want);
}

TEST(Reload, RestartOnlySettingsAreWarnedAndKept) {
  Fake f;
  f.file =
      "[daemon]\ncontrol_socket = \"/run/b.sock\"\nlog_level = \"debug\"\nadmin_group = "
      "\"wheel\"\n[engine]\ntimer_slot = \"200us\"\n";
  Reloader r("/etc/beacon.toml", running(), f.hooks(), nullptr);
  const ReloadOutcome o = r.reload("SIGHUP");
  EXPECT_TRUE(o.ok);
  ASSERT_EQ(o.warnings.size(), 2u);
  EXPECT_NE(o.warnings[0].find("needs a restart: [daemon] control_socket"), std::string::npos);
  EXPECT_NE(o.warnings[1].find("needs a restart: [engine] timer_slot"), std::string::npos);
  ASSERT_EQ(f.engine_cfgs.size(), 1u);
  EXPECT_EQ(f.engine_cfgs[0].daemon.control_socket, "/run/a.sock");
  EXPECT_EQ(f.engine_cfgs[0].engine.timer_slot, running().engine.timer_slot);
  EXPECT_EQ(r.running().daemon.control_socket, "/run/a.sock");
  EXPECT_EQ(f.level, "debug");
  EXPECT_NE(std::find(f.calls.begin(), f.calls.end(), "access wheel"), f.calls.end());
  EXPECT_EQ(r.running().daemon.admin_group, "wheel");
}

TEST(Reload, EngineRefusalChangesNothingAndStillSendsReady) {
  Fake f;
  f.file = std::string(kGood) + "[[session]]\npeer = \"198.18.0.3\"\ninterface = \"nope0\"\n";
  f.engine_result = engine::ReloadResult{};
  f.engine_result.errors = {"session 198.18.0.3: interface \"nope0\" does not exist"};
  Reloader r("/etc/beacon.toml", running(), f.hooks(), nullptr);
  const ReloadOutcome o = r.reload("bfdctl");
  EXPECT_FALSE(o.ok);
  EXPECT_EQ(o.errors, f.engine_result.errors);
  EXPECT_EQ(f.calls.back(), "READY=1");
  EXPECT_EQ(std::count(f.calls.begin(), f.calls.end(), "health"), 0);
  EXPECT_EQ(r.running().sessions.size(), 2u);
  EXPECT_EQ(r.stats().failed, 1u);
}

TEST(Reload, ControlCommandsReportErrorsProgressAndStats) {
  Fake f;
  Reloader r("/etc/beacon.toml", running(), f.hooks(), nullptr);
  ctl::Dispatcher d;
  r.register_commands(d);
  EXPECT_EQ(d.command_access("reload"), ctl::Access::Admin);
  EXPECT_EQ(d.command_access("reload-status"), ctl::Access::Read);

  f.progress.removing = 1;
  json ok = d.handle_json(R"({"cmd":"reload","wait":true})");
  EXPECT_EQ(ok["ok"], true) << ok.dump();
  EXPECT_EQ(ok["config"], "/etc/beacon.toml");
  EXPECT_EQ(ok["settled"], false);
  EXPECT_EQ(ok["pending"]["removing"], 1);
  EXPECT_TRUE(ok["errors"].empty());
  EXPECT_EQ(ok["sessions"]["unchanged"], 0);  // the fake engine reports none

  json no_wait = d.handle_json(R"({"cmd":"reload"})");
  EXPECT_FALSE(no_wait.contains("settled"));

  EXPECT_EQ(d.handle_json(R"({"cmd":"reload","wait":"yes"})")["ok"], false);
  // A request may not name a file.
  json named = d.handle_json(R"({"cmd":"reload","path":"/tmp/evil.toml"})");
  EXPECT_EQ(named["ok"], false);
  EXPECT_EQ(std::count(f.calls.begin(), f.calls.end(), "load /tmp/evil.toml"), 0);

  f.file = "[[session]]\npeer = 1\n";
  json bad = d.handle_json(R"({"cmd":"reload"})");
  EXPECT_EQ(bad["ok"], false);
  ASSERT_EQ(bad["errors"].size(), 1u);
  EXPECT_EQ(bad["error"], bad["errors"][0]);
  EXPECT_EQ(bad["errors"][0].get<std::string>().rfind("/etc/beacon.toml:2:", 0), 0u);

  f.progress = {};
  json st = d.handle_json(R"({"cmd":"reload-status"})");
  EXPECT_EQ(st["progress"]["settled"], true);
  EXPECT_EQ(st["reloads"]["ok"], 2);
  EXPECT_EQ(st["reloads"]["failed"], 1);
  EXPECT_EQ(st["reloads"]["last_at"], "2027-01-15T08:00:00Z");
  EXPECT_EQ(st["reloads"]["last_ok"], false);
}

TEST(Reload, SighupsFoldIntoOneQueuedReload) {
  Fake f;
  Reloader r("/etc/beacon.toml", running(), f.hooks(), nullptr);
  boost::asio::io_context ops;
  r.request_from_signal(ops);
  r.request_from_signal(ops);
  r.request_from_signal(ops);
  ops.run();
  EXPECT_EQ(r.stats().ok, 1u);
  ops.restart();
  r.request_from_signal(ops);
  ops.run();
  EXPECT_EQ(r.stats().ok, 2u);
}

}  // namespace
}  // namespace beacon::app
