// The health sink's mapping from a group decision to the engine's hold by
// cause: unhealthy and maintenance are resolved per session, start-up and
// healthy are the decision's own hold for every session.
#include "beacon/app/health_wiring.hpp"

#include <gtest/gtest.h>

namespace beacon::app {
namespace {

using engine::HoldCause;
using health::Verdict;

health::GroupDecision decision(Verdict v, bool failing) {
  health::GroupDecision d;
  d.verdict = v;
  d.failing = failing;
  return d;
}

TEST(HoldCause, FollowsTheVerdict) {
  EXPECT_EQ(hold_cause(decision(Verdict::Unhealthy, true)), HoldCause::Unhealthy);
  EXPECT_EQ(hold_cause(decision(Verdict::Maintenance, false)), HoldCause::Maintenance);
  EXPECT_EQ(hold_cause(decision(Verdict::Maintenance, true)), HoldCause::MaintenanceFailing);
  EXPECT_EQ(hold_cause(decision(Verdict::Unknown, false)), std::nullopt);
  EXPECT_EQ(hold_cause(decision(Verdict::Healthy, false)), std::nullopt);
}

engine::SessionSnapshot session(const std::string& group, core::Hold hold, std::uint8_t diag,
                                engine::HoldSource src, std::string reason = {}) {
  engine::SessionSnapshot s;
  s.group = group;
  s.hold = hold;
  s.local_diag = diag;
  s.hold_source = src;
  s.hold_reason = std::move(reason);
  return s;
}

// Operator maintenance is a hold source of its own: the health decision says
// "healthy, hold none" while every session sends AdminDown. "groups" reports
// what is sent, not the health decision alone.
TEST(GroupsJson, SignalIsWhatTheSessionsSendOverEverySource) {
  health::GroupStatus g;
  g.name = "web";
  g.decision.verdict = Verdict::Healthy;
  g.decision.hold = core::Hold::None;
  g.decision.diag = 0;
  const std::vector<engine::SessionSnapshot> live{
      session("web", core::Hold::AdminDown, 7, engine::HoldSource::Maintenance, "patching"),
      session("web", core::Hold::AdminDown, 7, engine::HoldSource::Maintenance, "patching"),
      session("api", core::Hold::None, 0, engine::HoldSource::Admin)};
  const auto j = groups_to_json({g}, &live);
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(j[0]["hold"], "none");  // the health decision stays as it was
  const auto& sig = j[0]["signal"];
  EXPECT_EQ(sig["hold"], "admin-down");
  EXPECT_EQ(sig["diag"], 7);
  EXPECT_EQ(sig["source"], "maintenance");
  EXPECT_EQ(sig["reason"], "patching");
  EXPECT_EQ(sig["sessions"], 2);
}

TEST(GroupsJson, SignalMixedNoneAndEmpty) {
  const std::vector<engine::SessionSnapshot> live{
      session("web", core::Hold::Down, 5, engine::HoldSource::Maintenance),
      session("web", core::Hold::AdminDown, 7, engine::HoldSource::Maintenance),
      session("api", core::Hold::None, 1, engine::HoldSource::Admin)};
  EXPECT_EQ(group_signal_json("web", live)["hold"], "mixed");
  const auto api = group_signal_json("api", live);
  EXPECT_EQ(api["hold"], "none");
  EXPECT_FALSE(api.contains("diag"));  // a diag is only a signal while held
  EXPECT_TRUE(group_signal_json("nosuch", live)["hold"].is_null());
  EXPECT_FALSE(groups_to_json({health::GroupStatus{}})[0].contains("signal"));
}

}  // namespace
}  // namespace beacon::app
