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

}  // namespace
}  // namespace beacon::app
