// Reload diff: session identity, what counts as a change, accept rules,
// checks, groups and the settings that need a restart.
#include "beacon/config/diff.hpp"

#include <gtest/gtest.h>

#include <string>

#include "config_test_support.hpp"

namespace beacon::config {
namespace {

using test::load_ok;

constexpr const char* kBase = R"(
[daemon]
control_socket = "/run/a.sock"
[[session]]
peer = "198.18.0.1"
interface = "veth0"
group = "web"
[[session]]
peer = "198.18.0.5"
local = "198.18.0.2"
multihop = true
[[session]]
peer = "fe80::1%veth1"
[[accept]]
prefix = "198.18.0.0/15"
group = "web"
[[check]]
name = "proc"
type = "haproxy-process"
pidfile = "/run/haproxy.pid"
[[check]]
name = "uplink"
type = "interface"
interface = "eth1"
[[group]]
name = "web"
checks = ["proc", "uplink"]
)";

Config base() {
  return load_ok(kBase);
}

std::string replaced(std::string text, const std::string& from, const std::string& to) {
  const auto at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

Config edited(const std::string& from, const std::string& to) {
  return load_ok(replaced(kBase, from, to));
}

TEST(ConfigDiff, IdenticalFilesDifferInNothing) {
  const ConfigDiff d = diff(base(), base());
  EXPECT_TRUE(d.empty()) << d.summary();
  EXPECT_EQ(d.sessions.unchanged.size(), 3u);
  EXPECT_EQ(d.summary(),
            "sessions: 3 unchanged; accept rules: unchanged; checks: 2 unchanged; groups: 1 "
            "unchanged");
}

TEST(ConfigDiff, OnlyPositionsMovedIsNoChange) {
  // Blank lines and reordered tables move line/column and indices.
  std::string text = kBase;
  text = "\n\n# comment\n" + text;
  Config moved = load_ok(text);
  ASSERT_NE(moved.sessions[0].line, base().sessions[0].line);
  EXPECT_TRUE(diff(base(), moved).empty());

  Config swapped = base();
  std::swap(swapped.sessions[0], swapped.sessions[2]);
  const SessionDiff sd = diff_sessions(base().sessions, swapped.sessions);
  EXPECT_TRUE(sd.added.empty());
  EXPECT_TRUE(sd.removed.empty());
  EXPECT_TRUE(sd.changed.empty());
  ASSERT_EQ(sd.unchanged.size(), 3u);
  EXPECT_EQ(sd.unchanged[0].old_index, 2u);
  EXPECT_EQ(sd.unchanged[0].new_index, 0u);
}

TEST(ConfigDiff, TimerChangeIsAParamsAndTimersChange) {
  const ConfigDiff d =
      diff(base(), edited("group = \"web\"\n[[session]]",
                          "group = \"web\"\ndesired_min_tx = \"100ms\"\n[[session]]"));
  ASSERT_EQ(d.sessions.changed.size(), 1u);
  const SessionChange& c = d.sessions.changed[0];
  EXPECT_EQ(c.old_index, 0u);
  EXPECT_TRUE(c.params);
  EXPECT_TRUE(c.timers);
  EXPECT_FALSE(c.group);
  EXPECT_EQ(d.sessions.unchanged.size(), 2u);
  EXPECT_NE(d.summary().find("sessions: 1 timers changed, 2 unchanged"), std::string::npos)
      << d.summary();
}

TEST(ConfigDiff, DetectMultAndPassiveAreParamsButNotTimers) {
  for (const char* key : {"detect_multiplier = 5", "passive = true"}) {
    const ConfigDiff d =
        diff(base(), edited("group = \"web\"\n[[session]]",
                            std::string("group = \"web\"\n") + key + "\n[[session]]"));
    ASSERT_EQ(d.sessions.changed.size(), 1u) << key;
    EXPECT_TRUE(d.sessions.changed[0].params) << key;
    EXPECT_FALSE(d.sessions.changed[0].timers) << key;
    EXPECT_NE(d.summary().find("1 parameters changed"), std::string::npos) << d.summary();
  }
}

TEST(ConfigDiff, BfdDefaultsReachEverySessionUsingThem) {
  Config next = load_ok(std::string("[bfd]\nrequired_min_rx = \"200ms\"\n") + kBase);
  const SessionDiff d = diff_sessions(base().sessions, next.sessions);
  EXPECT_EQ(d.changed.size(), 3u);
  for (const auto& c : d.changed) EXPECT_TRUE(c.timers);
}

TEST(ConfigDiff, GroupChangeMovesTheSessionInPlace) {
  const ConfigDiff d = diff(base(), edited("interface = \"veth0\"\ngroup = \"web\"",
                                           "interface = \"veth0\"\ngroup = \"db\""));
  ASSERT_EQ(d.sessions.changed.size(), 1u);
  EXPECT_TRUE(d.sessions.changed[0].group);
  EXPECT_FALSE(d.sessions.changed[0].params);
  EXPECT_TRUE(d.sessions.added.empty());
  EXPECT_TRUE(d.sessions.removed.empty());
  EXPECT_NE(d.summary().find("1 moved to another group"), std::string::npos) << d.summary();
}

TEST(ConfigDiff, MultihopMinTtlIsAnInPlaceChange) {
  const ConfigDiff d = diff(base(), edited("multihop = true", "multihop = true\nmin_ttl = 250"));
  ASSERT_EQ(d.sessions.changed.size(), 1u);
  EXPECT_TRUE(d.sessions.changed[0].min_ttl);
  EXPECT_FALSE(d.sessions.changed[0].params);
}

// Each part of the identity: a change is remove + add, never an edit.
TEST(ConfigDiff, IdentityChangeIsRemovePlusAdd) {
  struct Case {
    const char* what;
    const char* from;
    const char* to;
  };
  const Case cases[] = {
      {"peer address", "peer = \"198.18.0.1\"", "peer = \"198.18.0.9\""},
      {"interface", "interface = \"veth0\"", "interface = \"veth2\""},
      {"interface dropped", "interface = \"veth0\"\n", ""},
      {"local address", "local = \"198.18.0.2\"", "local = \"198.18.0.3\""},
      {"single hop <-> multihop", "multihop = true", "multihop = false"},
      {"link-local scope", "fe80::1%veth1", "fe80::1%veth0"},
  };
  for (const auto& c : cases) {
    const SessionDiff d = diff_sessions(base().sessions, edited(c.from, c.to).sessions);
    EXPECT_EQ(d.added.size(), 1u) << c.what;
    EXPECT_EQ(d.removed.size(), 1u) << c.what;
    EXPECT_TRUE(d.changed.empty()) << c.what;
    EXPECT_EQ(d.unchanged.size(), 2u) << c.what;
  }
}

TEST(ConfigDiff, AddedAndRemovedSessions) {
  Config next = base();
  next.sessions.erase(next.sessions.begin() + 1);
  SessionSpec extra = next.sessions[0];
  extra.peer = boost::asio::ip::make_address("198.18.0.7");
  next.sessions.push_back(extra);
  const ConfigDiff d = diff(base(), next);
  ASSERT_EQ(d.sessions.removed.size(), 1u);
  EXPECT_EQ(d.sessions.removed[0], 1u);
  ASSERT_EQ(d.sessions.added.size(), 1u);
  EXPECT_EQ(d.sessions.added[0], 2u);
  EXPECT_NE(d.summary().find("sessions: 1 added, 1 removed, 2 unchanged"), std::string::npos)
      << d.summary();
}

TEST(ConfigDiff, KeyTextNamesEveryPartOfTheIdentity) {
  const Config c = base();
  EXPECT_EQ(session_key_text(session_key(c.sessions[0])), "198.18.0.1 dev veth0");
  EXPECT_EQ(session_key_text(session_key(c.sessions[1])), "198.18.0.5 (multihop from 198.18.0.2)");
  EXPECT_NE(session_key_text(session_key(c.sessions[2])).find("fe80::1%"), std::string::npos);
}

TEST(ConfigDiff, AcceptRulesComparedAsAnOrderedList) {
  EXPECT_FALSE(diff(base(), base()).accepts_changed);
  EXPECT_TRUE(diff(base(), edited("prefix = \"198.18.0.0/15\"", "prefix = \"198.18.0.0/16\""))
                  .accepts_changed);
  EXPECT_TRUE(diff(base(), edited("prefix = \"198.18.0.0/15\"\ngroup = \"web\"",
                                  "prefix = \"198.18.0.0/15\"\ngroup = \"db\""))
                  .accepts_changed);
  Config two = load_ok(std::string(kBase) + "[[accept]]\nprefix = \"fd00::/64\"\n");
  Config swapped = two;
  std::swap(swapped.accepts[0], swapped.accepts[1]);
  EXPECT_TRUE(diff(two, swapped).accepts_changed);  // order decides the match
  const ConfigDiff d = diff(base(), two);
  EXPECT_TRUE(d.accepts_changed);
  EXPECT_NE(d.summary().find("accept rules: replaced (1 -> 2)"), std::string::npos) << d.summary();
}

TEST(ConfigDiff, EveryCheckFieldCountsExceptPosition) {
  const CheckSpec proc = base().checks[0];
  // Each mutation of one field is a change.
  std::vector<std::pair<const char*, std::function<void(CheckSpec&)>>> mutations = {
      {"type", [](CheckSpec& c) { c.type = CheckType::File; }},
      {"url", [](CheckSpec& c) { c.url = "http://x/"; }},
      {"expect_status", [](CheckSpec& c) { c.expect_status = 204; }},
      {"socket", [](CheckSpec& c) { c.socket = "/run/x"; }},
      {"backend", [](CheckSpec& c) { c.backend = "web"; }},
      {"min_servers_up", [](CheckSpec& c) { c.min_servers_up = 2; }},
      {"pidfile", [](CheckSpec& c) { c.pidfile = "/run/other.pid"; }},
      {"process_name", [](CheckSpec& c) { c.process_name = "hap"; }},
      {"reload_grace", [](CheckSpec& c) { c.reload_grace = core::Duration{1}; }},
      {"interface", [](CheckSpec& c) { c.interface = "eth9"; }},
      {"path", [](CheckSpec& c) { c.path = "/etc/x"; }},
      {"command", [](CheckSpec& c) { c.command = {"/bin/true"}; }},
      {"interval", [](CheckSpec& c) { c.interval = core::Duration{7}; }},
      {"fast_interval", [](CheckSpec& c) { c.fast_interval = core::Duration{7}; }},
      {"timeout", [](CheckSpec& c) { c.timeout = core::Duration{7}; }},
      {"rise", [](CheckSpec& c) { c.rise = 9; }},
      {"fall", [](CheckSpec& c) { c.fall = 9; }},
  };
  for (auto& [name, mutate] : mutations) {
    CheckSpec other = proc;
    mutate(other);
    EXPECT_FALSE(same_spec(proc, other)) << name;
  }
  CheckSpec moved = proc;
  moved.line += 10;
  moved.column += 3;
  EXPECT_TRUE(same_spec(proc, moved));
}

TEST(ConfigDiff, ChecksAndGroupsByName) {
  Config next = base();
  next.checks[0].pidfile = "/run/other.pid";   // proc changed
  next.checks.erase(next.checks.begin() + 1);  // uplink removed
  next.checks.push_back(next.checks[0]);
  next.checks.back().name = "proc2";                 // added
  next.groups[0].checks = {"proc", "proc2"};         // web changed
  next.groups.push_back(GroupSpec{"db", {"proc"}});  // db added
  const ConfigDiff d = diff(base(), next);
  EXPECT_EQ(d.checks.changed, std::vector<std::string>{"proc"});
  EXPECT_EQ(d.checks.removed, std::vector<std::string>{"uplink"});
  EXPECT_EQ(d.checks.added, std::vector<std::string>{"proc2"});
  EXPECT_TRUE(d.checks.unchanged.empty());
  EXPECT_EQ(d.groups.changed, std::vector<std::string>{"web"});
  EXPECT_EQ(d.groups.added, std::vector<std::string>{"db"});
  EXPECT_NE(d.summary().find("checks: 1 added, 1 removed, 1 changed, 0 unchanged"),
            std::string::npos)
      << d.summary();

  Config signal = base();
  signal.groups[0].unhealthy_signal = core::Hold::AdminDown;
  EXPECT_EQ(diff(base(), signal).groups.changed, std::vector<std::string>{"web"});
  Config diag = base();
  diag.groups[0].diag = 3;
  EXPECT_EQ(diff(base(), diag).groups.changed, std::vector<std::string>{"web"});
}

TEST(ConfigDiff, SettingsThatNeedARestartAreReportedAndKept) {
  Config next = base();
  next.daemon.control_socket = "/run/b.sock";
  next.engine.timer_slot = core::Duration{200};
  next.engine.transmit = "io_uring";
  next.engine.cpu = 1;
  next.engine.realtime_priority = 10;
  next.engine.lock_memory = true;
  next.health.failsafe_timeout = core::Duration{2'000'000};
  next.health.heartbeat_interval = core::Duration{50'000};
  const ConfigDiff d = diff(base(), next);
  ASSERT_EQ(d.needs_restart.size(), 8u);
  EXPECT_EQ(d.needs_restart[0],
            "needs a restart: [daemon] control_socket changed (\"/run/a.sock\" -> "
            "\"/run/b.sock\"); running with \"/run/a.sock\"");
  for (const char* key :
       {"[engine] cpu", "[engine] realtime_priority", "[engine] lock_memory", "[engine] timer_slot",
        "[engine] transmit", "[health] failsafe_timeout", "[health] heartbeat_interval"}) {
    bool found = false;
    for (const auto& line : d.needs_restart) found |= line.find(key) != std::string::npos;
    EXPECT_TRUE(found) << key;
  }
  EXPECT_FALSE(d.empty());
  const Config eff = effective_after_reload(base(), next);
  EXPECT_EQ(eff.daemon.control_socket, "/run/a.sock");
  EXPECT_EQ(eff.engine.timer_slot, base().engine.timer_slot);
  EXPECT_EQ(eff.engine.transmit, "send");
  EXPECT_EQ(eff.health.failsafe_timeout, base().health.failsafe_timeout);
  EXPECT_TRUE(restart_settings(base(), eff).empty());
}

// [drain] keys are read once, when the connection sampler is built.
TEST(ConfigDiff, DrainFrontendsNeedARestart) {
  Config next = base();
  next.drain.frontends = {"fe_http", "fe_tls"};
  const ConfigDiff d = diff(base(), next);
  ASSERT_EQ(d.needs_restart.size(), 1u);
  EXPECT_EQ(d.needs_restart[0],
            "needs a restart: [drain] frontends changed (all -> [\"fe_http\", \"fe_tls\"]); "
            "running with all");
  const Config eff = effective_after_reload(base(), next);
  EXPECT_TRUE(eff.drain.frontends.empty());
  EXPECT_TRUE(restart_settings(base(), eff).empty());
}

TEST(ConfigDiff, LiveSettingsAreAppliedNotRestart) {
  Config next = base();
  next.daemon.log_level = "debug";
  next.daemon.shutdown_signal = core::Hold::AdminDown;
  next.daemon.read_group = "ops";
  next.bfd.passive_create_per_second = 5;
  next.bfd.multihop_min_ttl = 250;
  const ConfigDiff d = diff(base(), next);
  EXPECT_TRUE(d.needs_restart.empty());
  EXPECT_TRUE(d.access_changed);
  ASSERT_EQ(d.applied.size(), 5u);
  EXPECT_EQ(d.applied[0], "[daemon] log_level: info -> debug");
  EXPECT_EQ(d.applied[1], "[daemon] shutdown_signal: down -> admin-down");
  Config admin = base();
  admin.daemon.admin_group = "wheel";
  EXPECT_TRUE(diff(base(), admin).access_changed);
  EXPECT_FALSE(diff(base(), base()).access_changed);
}

}  // namespace
}  // namespace beacon::config
