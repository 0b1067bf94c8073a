// HealthManager on a real io_context with scripted FakeProbes: verdicts,
// rise/fall, fast_interval, event-driven checks, heartbeats, hung probes.
// Every wait is bounded; timing asserts only use lower bounds that Asio
// guarantees (timers never fire early) or generous upper bounds.
#include "beacon/health/manager.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "fake_probe.hpp"

namespace beacon::health {
namespace {

using namespace std::chrono_literals;
using beacon::test::FakeProbes;
using SteadyClock = std::chrono::steady_clock;

constexpr Status P = Status::Pass;
constexpr Status F = Status::Fail;
constexpr Status M = Status::Maintenance;

config::CheckSpec polled(const std::string& name, std::chrono::milliseconds interval,
                         std::uint32_t rise = 1, std::uint32_t fall = 1,
                         std::chrono::milliseconds fast = 0ms) {
  config::CheckSpec c;
  c.name = name;
  c.type = config::CheckType::HaproxyHttp;
  c.interval = interval;
  c.fast_interval = fast;
  c.rise = rise;
  c.fall = fall;
  return c;
}

config::CheckSpec event(const std::string& name, config::CheckType type = config::CheckType::File) {
  config::CheckSpec c;
  c.name = name;
  c.type = type;
  return c;
}

config::GroupSpec group(const std::string& name, std::vector<std::string> checks) {
  config::GroupSpec g;
  g.name = name;
  g.checks = std::move(checks);
  return g;
}

struct Applied {
  std::string group;
  GroupDecision d;
};

struct Harness {
  boost::asio::io_context io;
  FakeProbes probes{io};
  config::Config cfg;
  std::vector<Applied> applied;
  std::vector<SteadyClock::time_point> heartbeats;
  std::function<void(const Applied&)> on_apply;
  std::unique_ptr<HealthManager> mgr;

  Harness() { cfg.health.heartbeat_interval = 1s; }

  void start() {
    Sink sink;
    sink.apply = [this](const std::string& g, const GroupDecision& d) {
      applied.push_back({g, d});
      if (on_apply) on_apply(applied.back());
    };
    sink.heartbeat = [this] { heartbeats.push_back(SteadyClock::now()); };
    mgr = std::make_unique<HealthManager>(io, cfg, sink, nullptr, probes.factory());
    mgr->start();
  }

  // Runs the loop until pred() holds or `limit` passes.
  bool run_until(const std::function<bool()>& pred, SteadyClock::duration limit = 5s) {
    const auto deadline = SteadyClock::now() + limit;
    while (!pred() && SteadyClock::now() < deadline) {
      if (io.stopped()) io.restart();
      io.run_one_for(10ms);
    }
    return pred();
  }
  void run_for(SteadyClock::duration d) {
    run_until([] { return false; }, d);
  }

  std::vector<Applied> of(const std::string& g) const {
    std::vector<Applied> out;
    for (const auto& a : applied) {
      if (a.group == g) out.push_back(a);
    }
    return out;
  }
  Verdict last_verdict(const std::string& g) const {
    auto v = of(g);
    return v.empty() ? Verdict::Unknown : v.back().d.verdict;
  }
};

TEST(HealthManager, FirstVerdictAppliedOncePerGroup) {
  Harness h;
  h.cfg.checks = {polled("haproxy", 20ms)};
  h.cfg.groups = {group("web", {"haproxy"})};
  h.start();
  // Start-up order: the group is held Down before any probe answered.
  ASSERT_EQ(h.applied.size(), 1u);
  EXPECT_EQ(h.applied[0].group, "web");
  EXPECT_EQ(h.applied[0].d.verdict, Verdict::Unknown);
  EXPECT_EQ(h.applied[0].d.hold, core::Hold::Down);
  EXPECT_EQ(h.applied[0].d.reason, "waiting for first health verdict");

  auto st = h.probes["haproxy"];
  ASSERT_TRUE(h.run_until([&] { return st->runs >= 5; }));
  ASSERT_EQ(h.applied.size(), 2u);  // Healthy once, not once per result
  EXPECT_EQ(h.applied[1].d.verdict, Verdict::Healthy);
  EXPECT_EQ(h.applied[1].d.hold, core::Hold::None);
  EXPECT_EQ(h.applied[1].d.reason, "healthy");
}

TEST(HealthManager, FirstRunHappensImmediatelyAtStart) {
  Harness h;
  h.cfg.checks = {polled("haproxy", 10s)};
  h.cfg.groups = {group("web", {"haproxy"})};
  h.start();
  EXPECT_EQ(h.probes["haproxy"]->runs, 1);
  ASSERT_TRUE(h.run_until([&] { return h.last_verdict("web") == Verdict::Healthy; }, 2s));
}

TEST(HealthManager, RiseFallThroughManager) {
  Harness h;
  h.cfg.checks = {polled("haproxy", 10ms, /*rise=*/3, /*fall=*/2)};
  h.cfg.groups = {group("web", {"haproxy"})};
  auto st = h.probes["haproxy"];
  st->push(P);
  st->push(F, "HTTP 503");
  st->push(F, "HTTP 503");
  st->push(P);
  st->push(P);
  st->push(P);
  std::vector<int> runs_at_apply;
  h.on_apply = [&](const Applied&) { runs_at_apply.push_back(st->runs); };
  h.start();
  ASSERT_TRUE(h.run_until([&] { return h.applied.size() >= 4; }));
  h.run_for(100ms);  // nothing else must follow: the fallback keeps passing
  ASSERT_EQ(h.applied.size(), 4u);
  EXPECT_EQ(h.applied[1].d.verdict, Verdict::Healthy);  // first result sets it directly
  EXPECT_EQ(runs_at_apply[1], 1);
  EXPECT_EQ(h.applied[2].d.verdict, Verdict::Unhealthy);  // after fall = 2 failures
  EXPECT_EQ(runs_at_apply[2], 3);
  EXPECT_EQ(h.applied[2].d.reason, "check haproxy: HTTP 503");
  EXPECT_EQ(h.applied[2].d.hold, core::Hold::Down);
  EXPECT_EQ(h.applied[2].d.diag, 5);
  EXPECT_EQ(h.applied[3].d.verdict, Verdict::Healthy);  // after rise = 3 passes
  EXPECT_EQ(runs_at_apply[3], 6);
}

TEST(HealthManager, FastIntervalWhileInTransition) {
  Harness h;
  h.cfg.checks = {polled("haproxy", 1000ms, /*rise=*/2, /*fall=*/3, /*fast=*/20ms)};
  h.cfg.groups = {group("web", {"haproxy"})};
  auto st = h.probes["haproxy"];
  st->push(P);
  st->push(F);
  st->push(F);
  st->push(F);  // stable Fail here: back to the slow interval
  st->fallback = beacon::test::make_result(F);
  h.start();
  ASSERT_TRUE(h.run_until([&] { return st->runs >= 5; }, 6s));
  const auto& t = st->run_starts;
  auto gap = [&](int a, int b) {
    return t[static_cast<std::size_t>(b)] - t[static_cast<std::size_t>(a)];
  };
  EXPECT_GE(gap(0, 1), 990ms);  // stable: interval
  EXPECT_LT(gap(1, 2), 500ms);  // in transition: fast_interval
  EXPECT_LT(gap(2, 3), 500ms);
  EXPECT_GE(gap(3, 4), 990ms);  // stable again: interval
  EXPECT_EQ(h.last_verdict("web"), Verdict::Unhealthy);
}

TEST(HealthManager, FastIntervalKeepsPollingWhileFlapping) {
  Harness h;
  h.cfg.checks = {polled("haproxy", 1000ms, /*rise=*/2, /*fall=*/1000, /*fast=*/10ms)};
  h.cfg.groups = {group("web", {"haproxy"})};
  auto st = h.probes["haproxy"];
  st->push(P);
  st->fallback = beacon::test::make_result(F);
  h.start();
  h.run_for(1600ms);
  // One slow gap to the first failure, then fast polling; slow polling
  // alone would give at most 3 runs.
  EXPECT_GE(st->runs, 10);
  EXPECT_EQ(h.last_verdict("web"), Verdict::Healthy);  // fall 1000 not reached
}

TEST(HealthManager, EventDrivenResultAppliedAtOnce) {
  Harness h;
  h.cfg.checks = {polled("haproxy", 10s), event("maint")};
  h.cfg.groups = {group("web", {"haproxy", "maint"})};
  auto maint = h.probes["maint"];
  maint->initial = beacon::test::make_result(P, "no maintenance file");
  h.start();
  ASSERT_TRUE(h.run_until([&] { return h.last_verdict("web") == Verdict::Healthy; }, 2s));
  EXPECT_EQ(maint->watches, 1);
  EXPECT_EQ(maint->runs, 0);  // event probes are never polled

  const auto before = h.applied.size();
  maint->emit(M, "maintenance file /etc/bfd-beacon/maintenance present");
  // Applied synchronously from the event: no poll, no loop turn needed.
  ASSERT_EQ(h.applied.size(), before + 1);
  EXPECT_EQ(h.applied.back().d.verdict, Verdict::Maintenance);
  EXPECT_EQ(h.applied.back().d.reason,
            "maintenance: check maint: maintenance file /etc/bfd-beacon/maintenance present");
  EXPECT_EQ(h.applied.back().d.hold, core::Hold::Down);
  EXPECT_EQ(h.applied.back().d.diag, 5);
  maint->emit(P, "no maintenance file");  // event types default to rise 1
  EXPECT_EQ(h.applied.back().d.verdict, Verdict::Healthy);
  EXPECT_EQ(h.probes["haproxy"]->runs, 1);
}

TEST(HealthManager, MaintenanceAdminDownUsesDiag7) {
  Harness h;
  h.cfg.checks = {event("maint")};
  auto g = group("web", {"maint"});
  g.maintenance_signal = core::Hold::AdminDown;
  g.diag = 5;
  h.cfg.groups = {g};
  auto maint = h.probes["maint"];
  maint->initial = beacon::test::make_result(M, "maintenance file present");
  h.start();
  ASSERT_TRUE(h.run_until([&] { return h.last_verdict("web") == Verdict::Maintenance; }, 2s));
  EXPECT_EQ(h.applied.back().d.hold, core::Hold::AdminDown);
  EXPECT_EQ(h.applied.back().d.diag, 7);
}

TEST(HealthManager, GroupWithSeveralChecksAndSharedCheck) {
  Harness h;
  h.cfg.checks = {polled("a", 100ms), polled("b", 10s)};
  h.cfg.groups = {group("both", {"a", "b"}), group("only-a", {"a"})};
  auto a = h.probes["a"];
  a->push(P);
  a->fallback = beacon::test::make_result(F, "HTTP 503");
  auto b = h.probes["b"];
  b->delay = 50ms;  // b answers after a: "both" must wait for it
  h.start();
  ASSERT_TRUE(h.run_until([&] { return h.last_verdict("both") == Verdict::Unhealthy; }, 3s));
  const auto only_a = h.of("only-a");
  const auto both = h.of("both");
  ASSERT_EQ(only_a.size(), 3u);
  ASSERT_EQ(both.size(), 3u);
  EXPECT_EQ(only_a[1].d.verdict, Verdict::Healthy);
  EXPECT_EQ(both[1].d.verdict, Verdict::Healthy);
  // "only-a" was healthy before "both" (which waited for b).
  auto index_of = [&](const std::string& g, Verdict v) {
    for (std::size_t i = 0; i < h.applied.size(); ++i) {
      if (h.applied[i].group == g && h.applied[i].d.verdict == v) return i;
    }
    return h.applied.size();
  };
  EXPECT_LT(index_of("only-a", Verdict::Healthy), index_of("both", Verdict::Healthy));
  // The shared check's failure moves both groups.
  EXPECT_EQ(only_a[2].d.verdict, Verdict::Unhealthy);
  EXPECT_EQ(both[2].d.reason, "check a: HTTP 503");
  EXPECT_EQ(h.probes.created(), 2);  // one probe per check, not per group
}

TEST(HealthManager, OnlyChecksUsedByAGroupAreRun) {
  Harness h;
  h.cfg.checks = {polled("used", 10s), polled("unused", 10s)};
  h.cfg.groups = {group("web", {"used"})};
  h.start();
  EXPECT_EQ(h.probes.created(), 1);
  EXPECT_EQ(h.probes["unused"]->runs, 0);
  const auto cs = h.mgr->checks();
  ASSERT_EQ(cs.size(), 1u);
  EXPECT_EQ(cs[0].name, "used");
}

TEST(HealthManager, HeartbeatCalledAtInterval) {
  Harness h;
  h.cfg.health.heartbeat_interval = 20ms;
  h.cfg.checks = {polled("haproxy", 10s)};
  h.cfg.groups = {group("web", {"haproxy"})};
  const auto t0 = SteadyClock::now();
  h.start();
  EXPECT_EQ(h.heartbeats.size(), 1u);  // at once at start
  h.run_for(500ms);
  const auto elapsed = SteadyClock::now() - t0;
  EXPECT_GE(h.heartbeats.size(), 10u);  // ~25 expected
  // Periodic from the previous deadline (not from when it ran): the k-th
  // heartbeat is never before start + k * interval (timers never fire early).
  EXPECT_LE(h.heartbeats.size(), static_cast<std::size_t>(elapsed / 20ms) + 2);
  for (std::size_t i = 1; i < h.heartbeats.size(); ++i) {
    EXPECT_GE(h.heartbeats[i] - h.heartbeats[0], static_cast<int>(i) * 20ms - 1ms) << i;
  }
}

TEST(HealthManager, HungProbeIsNotRerunAndCountsAsFailing) {
  Harness h;
  auto c = polled("haproxy", 10ms, /*rise=*/1, /*fall=*/2);
  c.timeout = 20ms;  // stuck after 2 * 20ms + 200ms
  h.cfg.checks = {c};
  h.cfg.groups = {group("web", {"haproxy"})};
  auto st = h.probes["haproxy"];
  st->hang = true;
  h.start();
  ASSERT_TRUE(h.run_until([&] { return h.last_verdict("web") == Verdict::Unhealthy; }, 3s));
  h.run_for(200ms);
  EXPECT_EQ(st->runs, 1);  // never a second run while the first is outstanding
  EXPECT_EQ(st->max_in_flight, 1);
  EXPECT_NE(h.applied.back().d.reason.find("probe did not complete within"), std::string::npos)
      << h.applied.back().d.reason;

  // The late completion is accepted and polling resumes.
  st->hang = false;
  ASSERT_EQ(st->hung.size(), 1u);
  st->hung[0](beacon::test::make_result(P));
  ASSERT_TRUE(h.run_until([&] { return st->runs >= 3; }, 2s));
  EXPECT_EQ(h.last_verdict("web"), Verdict::Healthy);
}

TEST(HealthManager, NothingReachesTheSinkAfterStopOrDestruction) {
  Harness h;
  h.cfg.health.heartbeat_interval = 10ms;
  h.cfg.checks = {polled("slow", 10ms), event("maint")};
  h.cfg.groups = {group("web", {"slow", "maint"})};
  auto slow = h.probes["slow"];
  slow->hang = true;
  auto maint = h.probes["maint"];
  h.start();
  auto watcher = maint->watcher;
  ASSERT_TRUE(watcher);
  h.mgr->stop();
  EXPECT_TRUE(maint->cancelled);
  const auto applied = h.applied.size();
  const auto beats = h.heartbeats.size();
  watcher(beacon::test::make_result(M));  // a probe breaking the cancel() contract
  h.run_for(100ms);
  h.mgr.reset();
  slow->hung[0](beacon::test::make_result(P));  // late callback after destruction
  h.run_for(50ms);
  EXPECT_EQ(h.applied.size(), applied);
  EXPECT_EQ(h.heartbeats.size(), beats);
}

TEST(HealthManager, StatusForControlSocket) {
  Harness h;
  auto c = polled("haproxy", 10s, 0, 0);  // type defaults: rise 2 / fall 2
  h.cfg.checks = {c, event("uplink", config::CheckType::Interface)};
  h.cfg.groups = {group("web", {"haproxy", "uplink"})};
  auto uplink = h.probes["uplink"];
  uplink->initial = beacon::test::make_result(F, "eth1: no carrier");
  h.start();
  auto gs = h.mgr->groups();
  ASSERT_EQ(gs.size(), 1u);
  EXPECT_EQ(gs[0].decision.verdict, Verdict::Unknown);
  ASSERT_TRUE(h.run_until([&] { return h.last_verdict("web") == Verdict::Unhealthy; }, 2s));
  const auto cs = h.mgr->checks();
  ASSERT_EQ(cs.size(), 2u);
  EXPECT_EQ(cs[0].name, "haproxy");
  EXPECT_EQ(cs[0].type, "haproxy-http");
  EXPECT_TRUE(cs[0].known);
  EXPECT_EQ(cs[0].state, P);
  EXPECT_EQ(cs[0].rise, 2u);
  EXPECT_EQ(cs[0].fall, 2u);
  EXPECT_FALSE(cs[0].event_driven);
  EXPECT_EQ(cs[1].state, F);
  EXPECT_EQ(cs[1].reason, "eth1: no carrier");
  EXPECT_EQ(cs[1].rise, 1u);
  EXPECT_TRUE(cs[1].event_driven);
  gs = h.mgr->groups();
  EXPECT_EQ(gs[0].decision.verdict, Verdict::Unhealthy);
  EXPECT_EQ(gs[0].decision.reason, "check uplink: eth1: no carrier");
  EXPECT_EQ(gs[0].checks, (std::vector<std::string>{"haproxy", "uplink"}));
}

// ---- faults: a probe that raises fails its own check and nothing else ----

const CheckStatus& status_of(const std::vector<CheckStatus>& cs, const std::string& name) {
  for (const auto& c : cs) {
    if (c.name == name) return c;
  }
  throw std::logic_error("no check " + name);
}

struct FaultCase {
  const char* name;
  bool in_handler;  // false: run() throws; true: its posted completion throws
};

class ProbeFaults : public ::testing::TestWithParam<FaultCase> {};

TEST_P(ProbeFaults, FailTheirCheckAtOnceAndLeaveTheRestRunning) {
  Harness h;
  h.cfg.health.heartbeat_interval = 20ms;
  // fall 5: the fault must not wait for five bad runs.
  h.cfg.checks = {polled("flaky", 20ms, 1, 5), polled("steady", 20ms)};
  h.cfg.groups = {group("g-flaky", {"flaky"}), group("g-steady", {"steady"})};
  h.start();
  ASSERT_TRUE(h.run_until([&] {
    return h.last_verdict("g-flaky") == Verdict::Healthy &&
           h.last_verdict("g-steady") == Verdict::Healthy;
  }));

  auto flaky = h.probes["flaky"];
  (GetParam().in_handler ? flaky->throw_in_handler : flaky->throw_in_run) = "socket exploded";
  ASSERT_TRUE(h.run_until([&] { return h.last_verdict("g-flaky") == Verdict::Unhealthy; }))
      << "the failing probe never turned its check Fail";
  auto cs = h.mgr->checks();
  EXPECT_EQ(status_of(cs, "flaky").state, F);
  EXPECT_EQ(status_of(cs, "flaky").reason, "probe error: socket exploded");
  EXPECT_EQ(status_of(cs, "flaky").faults, 1u);
  EXPECT_EQ(h.of("g-flaky").back().d.reason, "check flaky: probe error: socket exploded");
  EXPECT_EQ(h.of("g-flaky").back().d.hold, core::Hold::Down);

  // The other check keeps running and its group keeps its verdict; the
  // heartbeat keeps flowing (the loop never stopped).
  const int steady_runs = h.probes["steady"]->runs;
  const std::size_t beats = h.heartbeats.size();
  h.run_for(300ms);
  EXPECT_GE(h.probes["steady"]->runs, steady_runs + 5);
  EXPECT_GE(h.heartbeats.size(), beats + 5);
  EXPECT_EQ(h.last_verdict("g-steady"), Verdict::Healthy);
  EXPECT_EQ(h.of("g-steady").size(), 2u);  // start (unknown) + healthy, nothing since
  // While the probe is retired it is not run (it would only raise again).
  EXPECT_EQ(h.probes.created(), 2);

  // Fixed: the probe is rebuilt after the back-off (1 s, never earlier) and
  // its check recovers through the normal path.
  flaky->throw_in_run.clear();
  flaky->throw_in_handler.clear();
  const auto fixed = SteadyClock::now();
  ASSERT_TRUE(h.run_until([&] { return h.last_verdict("g-flaky") == Verdict::Healthy; }, 5s));
  EXPECT_GE(SteadyClock::now() - fixed, 600ms);  // 1 s after the fault, which was >=300 ms ago
  EXPECT_EQ(h.probes.created(), 3);
  cs = h.mgr->checks();
  EXPECT_EQ(status_of(cs, "flaky").state, P);
  EXPECT_EQ(status_of(cs, "flaky").faults, 1u);
}

INSTANTIATE_TEST_SUITE_P(Where, ProbeFaults,
                         ::testing::Values(FaultCase{"ThrownByRun", false},
                                           FaultCase{"ThrownByItsHandler", true}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(HealthManager, EventProbeWhoseWatchThrowsFailsOnlyItsCheck) {
  Harness h;
  h.cfg.health.heartbeat_interval = 20ms;
  h.cfg.checks = {event("maint"), event("uplink", config::CheckType::Interface)};
  h.cfg.groups = {group("web", {"maint"}), group("db", {"uplink"})};
  h.probes["maint"]->throw_in_run = "inotify_init1: too many instances";
  h.probes["uplink"]->initial = beacon::test::make_result(P, "eth0 up");
  h.start();
  ASSERT_TRUE(h.run_until([&] {
    return h.last_verdict("web") == Verdict::Unhealthy && h.last_verdict("db") == Verdict::Healthy;
  }));
  EXPECT_EQ(status_of(h.mgr->checks(), "maint").reason,
            "probe error: inotify_init1: too many instances");

  h.probes["maint"]->throw_in_run.clear();
  h.probes["maint"]->initial = beacon::test::make_result(P, "no maintenance file");
  ASSERT_TRUE(h.run_until([&] { return h.last_verdict("web") == Verdict::Healthy; }, 5s));
  EXPECT_EQ(h.probes["maint"]->watches, 2);  // rebuilt and watched again
  // The rebuilt probe's events are fed like any other.
  h.probes["maint"]->emit(M, "maintenance file present");
  EXPECT_EQ(h.last_verdict("web"), Verdict::Maintenance);
  EXPECT_EQ(h.last_verdict("db"), Verdict::Healthy);
}

TEST(HealthManager, ACheckThatKeepsRaisingBacksOffAndStaysFailing) {
  Harness h;
  h.cfg.checks = {polled("broken", 20ms)};
  h.cfg.groups = {group("web", {"broken"})};
  h.probes["broken"]->throw_in_run = "always";
  h.start();
  // Faults at ~0 s, ~1 s (rebuilt, raises again) and ~3 s (back-off doubled).
  h.run_for(2500ms);
  auto cs = h.mgr->checks();
  EXPECT_EQ(status_of(cs, "broken").faults, 2u);
  EXPECT_EQ(status_of(cs, "broken").state, F);
  EXPECT_EQ(h.last_verdict("web"), Verdict::Unhealthy);
  // One Unknown -> Unhealthy change; repeated faults do not re-apply it.
  EXPECT_EQ(h.of("web").size(), 2u);
}

// ================================================================ reload

const CheckStatus* find_check(const std::vector<CheckStatus>& cs, const std::string& name) {
  for (const auto& c : cs) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

// A check whose spec did not change keeps its probe, state and history; the
// groups it feeds see no new decision.
TEST(HealthManagerReload, UnchangedCheckKeepsProbeStateAndHistory) {
  Harness h;
  h.cfg.checks = {polled("haproxy", 20ms), event("maint")};
  h.cfg.groups = {group("web", {"haproxy", "maint"})};
  h.probes["maint"]->initial = beacon::test::make_result(P);
  h.start();
  ASSERT_TRUE(h.run_until([&] { return h.last_verdict("web") == Verdict::Healthy; }));
  ASSERT_TRUE(h.run_until([&] { return h.probes["haproxy"]->runs >= 3; }));
  const auto before = h.mgr->checks();
  const int created = h.probes.created();
  const std::size_t applied = h.applied.size();
  config::Config next = h.cfg;
  next.checks[0].line = 40;  // moved in the file only
  next.checks[1].column = 9;
  const ReconfigureResult r = h.mgr->reconfigure(next);
  EXPECT_TRUE(r.applied);
  EXPECT_EQ(r.kept, 2u);
  EXPECT_EQ(r.restarted + r.started + r.stopped, 0u);
  EXPECT_EQ(h.probes.created(), created);
  EXPECT_FALSE(h.probes["maint"]->cancelled);
  EXPECT_EQ(h.applied.size(), applied);
  const auto after = h.mgr->checks();
  ASSERT_EQ(after.size(), 2u);
  EXPECT_GE(after[0].results, before[0].results);
  EXPECT_TRUE(after[0].known);
  EXPECT_TRUE(after[1].known);
  // It keeps running on its old schedule, and the event probe still reports.
  const int runs = h.probes["haproxy"]->runs;
  ASSERT_TRUE(h.run_until([&] { return h.probes["haproxy"]->runs >= runs + 2; }));
  h.probes["maint"]->emit(M, "marker");
  EXPECT_EQ(h.last_verdict("web"), Verdict::Maintenance);
}

// A changed check starts fresh (new probe, no history). The group it feeds
// keeps its decision until the fresh check reports, then follows it.
TEST(HealthManagerReload, ChangedCheckStartsFreshAndItsGroupDoesNotFlap) {
  Harness h;
  h.cfg.checks = {polled("haproxy", 20ms)};
  h.cfg.groups = {group("web", {"haproxy"})};
  h.start();
  ASSERT_TRUE(h.run_until([&] { return h.last_verdict("web") == Verdict::Healthy; }));
  const std::size_t applied = h.applied.size();
  auto st = h.probes["haproxy"];
  st->delay = 100ms;  // the fresh probe's first result takes a while
  st->fallback = beacon::test::make_result(F, "HTTP 503");
  config::Config next = h.cfg;
  next.checks[0].interval = 30ms;
  const int created = h.probes.created();
  const ReconfigureResult r = h.mgr->reconfigure(next);
  EXPECT_TRUE(r.applied);
  EXPECT_EQ(r.restarted, 1u);
  EXPECT_EQ(h.probes.created(), created + 1);
  auto cs = h.mgr->checks();
  ASSERT_EQ(cs.size(), 1u);
  EXPECT_FALSE(cs[0].known);
  EXPECT_EQ(cs[0].results, 0u);
  EXPECT_EQ(h.applied.size(), applied) << "the group went Unknown at the reload";
  auto gs = h.mgr->groups();
  EXPECT_EQ(gs[0].decision.verdict, Verdict::Healthy);
  EXPECT_NE(gs[0].decision.reason.find("kept across the reload"), std::string::npos);
  ASSERT_TRUE(h.run_until([&] { return h.last_verdict("web") == Verdict::Unhealthy; }));
  for (std::size_t i = applied; i < h.applied.size(); ++i) {
    EXPECT_NE(h.applied[i].d.verdict, Verdict::Unknown);
  }
  EXPECT_EQ(h.of("web").back().d.reason, "check haproxy: HTTP 503");
}

// A new group over a new check starts Unknown (held Down) until its first
// verdict, as at start-up; the groups that did not change get no call.
TEST(HealthManagerReload, NewGroupStartsUnknownHeldDown) {
  Harness h;
  h.cfg.checks = {polled("haproxy", 20ms)};
  h.cfg.groups = {group("web", {"haproxy"})};
  h.start();
  ASSERT_TRUE(h.run_until([&] { return h.last_verdict("web") == Verdict::Healthy; }));
  const std::size_t web_calls = h.of("web").size();
  config::Config next = h.cfg;
  next.checks.push_back(polled("db", 20ms));
  next.groups.push_back(group("db", {"db"}));
  h.probes["db"]->delay = 50ms;
  const ReconfigureResult r = h.mgr->reconfigure(next);
  EXPECT_EQ(r.kept, 1u);
  EXPECT_EQ(r.started, 1u);
  ASSERT_FALSE(h.of("db").empty());
  EXPECT_EQ(h.of("db")[0].d.verdict, Verdict::Unknown);
  EXPECT_EQ(h.of("db")[0].d.hold, core::Hold::Down);
  ASSERT_TRUE(h.run_until([&] { return h.last_verdict("db") == Verdict::Healthy; }));
  h.run_for(60ms);
  EXPECT_EQ(h.of("web").size(), web_calls);
  EXPECT_EQ(h.mgr->groups().size(), 2u);
}

// A removed check stops (probe cancelled, no more runs); the group it fed is
// re-evaluated without it and told only because its decision changed.
TEST(HealthManagerReload, RemovedCheckStopsAndItsGroupIsReevaluated) {
  Harness h;
  h.cfg.checks = {polled("haproxy", 20ms), polled("extra", 20ms)};
  h.cfg.groups = {group("web", {"haproxy", "extra"})};
  h.probes["extra"]->fallback = beacon::test::make_result(F, "down");
  h.start();
  ASSERT_TRUE(h.run_until([&] { return h.last_verdict("web") == Verdict::Unhealthy; }));
  config::Config next = h.cfg;
  next.checks.pop_back();
  next.groups[0].checks = {"haproxy"};
  const ReconfigureResult r = h.mgr->reconfigure(next);
  EXPECT_EQ(r.stopped, 1u);
  EXPECT_EQ(r.kept, 1u);
  EXPECT_TRUE(h.probes["extra"]->cancelled);
  EXPECT_EQ(h.last_verdict("web"), Verdict::Healthy);
  const int runs = h.probes["extra"]->runs;
  h.run_for(100ms);
  EXPECT_EQ(h.probes["extra"]->runs, runs);
  EXPECT_EQ(find_check(h.mgr->checks(), "extra"), nullptr);
  ASSERT_NE(find_check(h.mgr->checks(), "haproxy"), nullptr);
  // A group's signal change alone is handed to the sink (decision changed).
  h.probes["haproxy"]->fallback = beacon::test::make_result(F, "HTTP 503");
  ASSERT_TRUE(h.run_until([&] { return h.last_verdict("web") == Verdict::Unhealthy; }));
  config::Config admin = next;
  admin.groups[0].unhealthy_signal = core::Hold::AdminDown;
  const std::size_t calls = h.of("web").size();
  h.mgr->reconfigure(admin);
  ASSERT_EQ(h.of("web").size(), calls + 1);
  EXPECT_EQ(h.of("web").back().d.hold, core::Hold::AdminDown);
}

// A probe that cannot be built refuses the reload: nothing changes.
TEST(HealthManagerReload, ProbeThatCannotBeBuiltRefusesTheReload) {
  boost::asio::io_context io;
  FakeProbes probes{io};
  config::Config cfg;
  cfg.checks = {polled("haproxy", 20ms)};
  cfg.groups = {group("web", {"haproxy"})};
  auto inner = probes.factory();
  ProbeFactory factory = [&](const config::CheckSpec& spec,
                             const boost::asio::any_io_executor& ex) {
    if (spec.name == "bad") throw std::runtime_error("no such socket");
    return inner(spec, ex);
  };
  std::vector<std::string> groups;
  Sink sink;
  sink.apply = [&](const std::string& g, const GroupDecision&) { groups.push_back(g); };
  HealthManager mgr(io, cfg, sink, nullptr, factory);
  mgr.start();
  config::Config next = cfg;
  next.checks[0].interval = 50ms;
  next.checks.push_back(polled("bad", 20ms));
  next.groups[0].checks.push_back("bad");
  const ReconfigureResult r = mgr.reconfigure(next);
  EXPECT_FALSE(r.applied);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0], "check bad: no such socket");
  auto cs = mgr.checks();
  ASSERT_EQ(cs.size(), 1u);
  EXPECT_EQ(mgr.groups()[0].checks, std::vector<std::string>{"haproxy"});
  EXPECT_FALSE(probes["haproxy"]->cancelled);
  mgr.stop();
}

#ifdef BEACON_TEST_HOOKS
TEST(HealthManager, TestStallBlocksTheOpsLoop) {
  Harness h;
  h.cfg.health.heartbeat_interval = 10ms;
  h.cfg.checks = {polled("haproxy", 10s)};
  h.cfg.groups = {group("web", {"haproxy"})};
  h.start();
  h.run_for(50ms);
  h.mgr->test_stall(300ms);
  h.run_for(400ms);
  SteadyClock::duration max_gap{0};
  for (std::size_t i = 1; i < h.heartbeats.size(); ++i) {
    max_gap = std::max(max_gap, h.heartbeats[i] - h.heartbeats[i - 1]);
  }
  EXPECT_GE(max_gap, 290ms);                                     // no heartbeat while stalled
  EXPECT_GT(h.heartbeats.back(), h.heartbeats.front() + 300ms);  // and they resume
}
#endif

}  // namespace
}  // namespace beacon::health
