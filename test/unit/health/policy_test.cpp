// CheckPolicy (rise/fall hysteresis) and decide() (group verdicts): pure,
// table-driven.
#include "beacon/health/policy.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace beacon::health {
namespace {

constexpr Status P = Status::Pass;
constexpr Status F = Status::Fail;
constexpr Status M = Status::Maintenance;

Result res(Status s, std::string reason = "") {
  Result r;
  r.status = s;
  r.reason = reason.empty() ? std::string(status_name(s)) : std::move(reason);
  return r;
}

struct SeqCase {
  const char* name;
  std::uint32_t rise, fall;
  std::vector<Status> feed;
  std::vector<Status> state_after;  // stable state after each result
  std::vector<bool> changed;        // feed() return value
  std::vector<bool> transition;     // in_transition() after each result
};

class CheckPolicySeq : public ::testing::TestWithParam<SeqCase> {};

TEST_P(CheckPolicySeq, StableStateFollowsRiseFall) {
  const auto& c = GetParam();
  CheckPolicy p(c.rise, c.fall);
  EXPECT_FALSE(p.known());
  EXPECT_EQ(p.state(), F);  // never passes before a result
  EXPECT_FALSE(p.in_transition());
  for (std::size_t i = 0; i < c.feed.size(); ++i) {
    SCOPED_TRACE("result #" + std::to_string(i + 1));
    EXPECT_EQ(p.feed(res(c.feed[i])), c.changed[i]);
    EXPECT_TRUE(p.known());
    EXPECT_EQ(p.state(), c.state_after[i]);
    EXPECT_EQ(p.in_transition(), c.transition[i]);
    EXPECT_EQ(p.last().status, c.feed[i]);
  }
}

// clang-format off
INSTANTIATE_TEST_SUITE_P(
    Sequences, CheckPolicySeq,
    ::testing::Values(
        SeqCase{"PassThenFallTwoFails", 3, 2, {P, P, F, F},
                {P, P, P, F}, {true, false, false, true}, {false, false, true, false}},
        SeqCase{"FailThenRiseThreePasses", 3, 2, {F, P, P, P},
                {F, F, F, P}, {true, false, false, true}, {false, true, true, false}},
        SeqCase{"FirstFailSetsStateAtOnce", 3, 2, {F},
                {F}, {true}, {false}},
        SeqCase{"FirstPassSetsStateAtOnce", 3, 2, {P},
                {P}, {true}, {false}},
        SeqCase{"FirstMaintenanceSetsStateAtOnce", 3, 2, {M},
                {M}, {true}, {false}},
        SeqCase{"FlappingNeverChangesState", 3, 2, {P, F, P, F, P, F, P},
                {P, P, P, P, P, P, P}, {true, false, false, false, false, false, false},
                {false, true, false, true, false, true, false}},
        SeqCase{"FlappingFromFailNeverRises", 3, 2, {F, P, P, F, P, P, F},
                {F, F, F, F, F, F, F}, {true, false, false, false, false, false, false},
                {false, true, true, false, true, true, false}},
        SeqCase{"RiseOneFallOneFollowsEveryChange", 1, 1, {P, F, P, M, P},
                {P, F, P, M, P}, {true, true, true, true, true},
                {false, false, false, false, false}},
        SeqCase{"MaintenanceUsesFallCount", 3, 2, {P, M, M, P, P, P},
                {P, P, M, M, M, P}, {true, false, true, false, false, true},
                {false, true, false, true, true, false}},
        SeqCase{"StreakRestartsWhenTargetChanges", 3, 2, {P, F, M, M},
                {P, P, P, M}, {true, false, false, true}, {false, true, true, false}},
        SeqCase{"ZeroCountsActAsOne", 0, 0, {P, F, P},
                {P, F, P}, {true, true, true}, {false, false, false}}),
    [](const auto& info) { return std::string(info.param.name); });
// clang-format on

TEST(CheckPolicy, ReasonTracksStableStateNotTransientResults) {
  CheckPolicy p(2, 2);
  p.feed(res(P, "HTTP 200"));
  p.feed(res(F, "HTTP 503"));  // in transition: stable reason unchanged
  EXPECT_EQ(p.reason(), "HTTP 200");
  EXPECT_EQ(p.last().reason, "HTTP 503");
  p.feed(res(F, "timeout"));
  EXPECT_EQ(p.state(), F);
  EXPECT_EQ(p.reason(), "timeout");
  p.feed(res(F, "connection refused"));  // agreeing result refreshes the text
  EXPECT_EQ(p.reason(), "connection refused");
}

// ---- decide() ----

config::GroupSpec group(core::Hold unhealthy = core::Hold::Down,
                        core::Hold maintenance = core::Hold::Down, std::uint8_t diag = 5) {
  config::GroupSpec g;
  g.name = "web";
  g.unhealthy_signal = unhealthy;
  g.maintenance_signal = maintenance;
  g.diag = diag;
  return g;
}

struct Checks {
  std::vector<std::string> names;
  std::vector<CheckPolicy> policies;
  void add(const std::string& name, std::optional<Result> first) {
    names.push_back(name);
    policies.emplace_back(1, 1);
    if (first) policies.back().feed(*first);
  }
  std::vector<std::pair<std::string, const CheckPolicy*>> view() const {
    std::vector<std::pair<std::string, const CheckPolicy*>> v;
    for (std::size_t i = 0; i < names.size(); ++i) v.emplace_back(names[i], &policies[i]);
    return v;
  }
};

TEST(Decide, UnknownUntilEveryCheckHasAResultHoldsDown) {
  Checks c;
  c.add("haproxy", res(P));
  c.add("uplink", std::nullopt);
  const auto d = decide(group(core::Hold::AdminDown, core::Hold::AdminDown, 5), c.view());
  EXPECT_EQ(d.verdict, Verdict::Unknown);
  EXPECT_EQ(d.hold, core::Hold::Down);  // start-up: never AdminDown, never Up
  EXPECT_EQ(d.diag, 5);
  EXPECT_EQ(d.reason, "waiting for first health verdict");
}

TEST(Decide, MissingCheckCountsAsUnknown) {
  std::vector<std::pair<std::string, const CheckPolicy*>> v{{"ghost", nullptr}};
  EXPECT_EQ(decide(group(), v).verdict, Verdict::Unknown);
}

TEST(Decide, HealthyWhenAllPass) {
  Checks c;
  c.add("haproxy", res(P, "HTTP 200"));
  c.add("uplink", res(P, "up"));
  const auto d = decide(group(), c.view());
  EXPECT_EQ(d.verdict, Verdict::Healthy);
  EXPECT_EQ(d.hold, core::Hold::None);
  EXPECT_EQ(d.reason, "healthy");
}

TEST(Decide, EmptyGroupIsHealthy) {
  EXPECT_EQ(decide(group(), {}).verdict, Verdict::Healthy);
}

struct SignalCase {
  const char* name;
  core::Hold unhealthy, maintenance;
  std::vector<Status> states;  // checks a, b, c
  Verdict verdict;
  core::Hold hold;
  std::uint8_t diag;
  const char* reason;
};

class DecideSignal : public ::testing::TestWithParam<SignalCase> {};

TEST_P(DecideSignal, VerdictHoldDiagReason) {
  const auto& sc = GetParam();
  Checks c;
  const char* names[] = {"haproxy", "uplink", "maint"};
  const char* reasons[] = {"HTTP 503", "link down", "maintenance file present"};
  for (std::size_t i = 0; i < sc.states.size(); ++i) {
    c.add(names[i], res(sc.states[i], sc.states[i] == P ? "ok" : reasons[i]));
  }
  const auto d = decide(group(sc.unhealthy, sc.maintenance, 6), c.view());
  EXPECT_EQ(d.verdict, sc.verdict);
  EXPECT_EQ(d.hold, sc.hold);
  EXPECT_EQ(d.diag, sc.diag);
  EXPECT_EQ(d.reason, sc.reason);
}

constexpr auto D = core::Hold::Down;
constexpr auto A = core::Hold::AdminDown;

// clang-format off
INSTANTIATE_TEST_SUITE_P(
    Table, DecideSignal,
    ::testing::Values(
        SignalCase{"UnhealthyDownUsesGroupDiag", D, D, {F, P, P},
                   Verdict::Unhealthy, D, 6, "check haproxy: HTTP 503"},
        SignalCase{"UnhealthyAdminDownUsesDiag7", A, D, {F, P, P},
                   Verdict::Unhealthy, A, 7, "check haproxy: HTTP 503"},
        SignalCase{"UnhealthyNamesEveryFailingCheck", D, D, {F, F, P},
                   Verdict::Unhealthy, D, 6, "check haproxy: HTTP 503; check uplink: link down"},
        SignalCase{"MaintenanceDown", D, D, {P, P, M},
                   Verdict::Maintenance, D, 6, "maintenance: check maint: maintenance file present"},
        SignalCase{"MaintenanceAdminDown", D, A, {P, P, M},
                   Verdict::Maintenance, A, 7, "maintenance: check maint: maintenance file present"},
        SignalCase{"MaintenanceWinsOverUnhealthy", A, D, {F, P, M},
                   Verdict::Maintenance, D, 6,
                   "maintenance: check maint: maintenance file present; also failing: check haproxy: HTTP 503"},
        // A failing box is never signalled with the weaker AdminDown, which
        // some routers ignore (RFC 5882 §3.2), when unhealthy means Down.
        SignalCase{"MaintenanceAdminDownButFailingHoldsDown", D, A, {F, P, M},
                   Verdict::Maintenance, D, 6,
                   "maintenance: check maint: maintenance file present; also failing: check haproxy: HTTP 503"},
        SignalCase{"MaintenanceAdminDownFailingAdminDown", A, A, {F, P, M},
                   Verdict::Maintenance, A, 7,
                   "maintenance: check maint: maintenance file present; also failing: check haproxy: HTTP 503"}),
    [](const auto& info) { return std::string(info.param.name); });
// clang-format on

// `failing` tells the engine a check fails too, so each session can apply
// the maintenance-and-failing rule with its own signals.
TEST(Decide, FailingFlagsAFailingCheckWhateverTheVerdict) {
  struct Case {
    std::vector<Status> states;
    bool failing;
  };
  for (const auto& c : std::vector<Case>{
           {{P, P}, false}, {{F, P}, true}, {{P, M}, false}, {{F, M}, true}, {{M, M}, false}}) {
    Checks k;
    k.add("a", res(c.states[0], "x"));
    k.add("b", res(c.states[1], "y"));
    EXPECT_EQ(decide(group(), k.view()).failing, c.failing);
  }
  Checks unknown;
  unknown.add("a", std::nullopt);
  EXPECT_FALSE(decide(group(), unknown.view()).failing);
}

TEST(Verdict, Names) {
  EXPECT_EQ(verdict_name(Verdict::Unknown), "unknown");
  EXPECT_EQ(verdict_name(Verdict::Healthy), "healthy");
  EXPECT_EQ(verdict_name(Verdict::Unhealthy), "unhealthy");
  EXPECT_EQ(verdict_name(Verdict::Maintenance), "maintenance");
}

}  // namespace
}  // namespace beacon::health
