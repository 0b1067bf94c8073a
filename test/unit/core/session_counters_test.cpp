// Session counters and histograms: transitions by from/to, flaps by cause,
// drops by reason, the peer's gaps and the transmit lateness, all with the
// fake clock.
#include <gtest/gtest.h>

#include <numeric>

#include "beacon/core/histogram.hpp"
#include "beacon/core/session.hpp"
#include "session_driver.hpp"

namespace beacon::core {
namespace {

using test::ms;
using test::peer;
using test::SessionDriver;
using wire::DropReason;
using wire::State;

constexpr std::size_t at(State s) {
  return static_cast<std::size_t>(s);
}
constexpr std::size_t at(FlapCause c) {
  return static_cast<std::size_t>(c);
}

std::uint64_t flaps_total(const SessionCounters& c) {
  return std::accumulate(c.flaps.begin(), c.flaps.end(), std::uint64_t{0});
}

TEST(HistogramTest, BucketsFollowPrometheusLeSemantics) {
  LatenessHistogram h;
  h.observe(Duration{10});         // == first bound: first bucket
  h.observe(Duration{11});         // above it: second
  h.observe(Duration{-5});         // negative counts as 0: first
  h.observe(Duration{5'000'000});  // above the largest: overflow
  EXPECT_EQ(h.counts[0], 2u);
  EXPECT_EQ(h.counts[1], 1u);
  EXPECT_EQ(h.counts[LatenessHistogram::kBuckets - 1], 1u);
  EXPECT_EQ(h.count, 4u);
  EXPECT_EQ(h.sum, Duration{10 + 11 + 0 + 5'000'000});
}

TEST(HistogramTest, BoundsAscendAndCoverBfdIntervals) {
  for (std::size_t i = 1; i < GapBuckets::kBoundsUs.size(); ++i) {
    EXPECT_LT(GapBuckets::kBoundsUs[i - 1], GapBuckets::kBoundsUs[i]);
  }
  for (std::size_t i = 1; i < LatenessBuckets::kBoundsUs.size(); ++i) {
    EXPECT_LT(LatenessBuckets::kBoundsUs[i - 1], LatenessBuckets::kBoundsUs[i]);
  }
  // A 3.3 ms session's gaps and a 1 s session's (75-100 %) fall inside the
  // bounds, not in the overflow bucket.
  EXPECT_LE(GapBuckets::kBoundsUs.front(), 2'500);
  EXPECT_GE(GapBuckets::kBoundsUs.back(), 2'000'000);
}

TEST(FlapCauseTest, NamesAreStable) {
  EXPECT_EQ(flap_cause_name(FlapCause::Timeout), "timeout");
  EXPECT_EQ(flap_cause_name(FlapCause::PeerDown), "peer-down");
  EXPECT_EQ(flap_cause_name(FlapCause::PeerAdminDown), "peer-admin-down");
  EXPECT_EQ(flap_cause_name(FlapCause::LocalHold), "local-hold");
}

// SM-04, SM-05: the handshake counts Down->Init and Init->Up, no flap.
TEST(SessionCountersTest, HandshakeCountsTransitionsFromTo) {
  SessionDriver d(test::params(ms(50), ms(50)));
  d.bring_up();
  const auto& c = d.s().counters();
  EXPECT_EQ(c.transitions[at(State::Down)][at(State::Init)], 1u);
  EXPECT_EQ(c.transitions[at(State::Init)][at(State::Up)], 1u);
  EXPECT_EQ(c.state_changes, 2u);
  EXPECT_EQ(flaps_total(c), 0u);
}

// SM-15: the detection time expiring is a timeout flap.
TEST(SessionCountersTest, DetectionTimeoutIsATimeoutFlap) {
  SessionDriver d(test::params(ms(50), ms(50)));
  d.bring_up();
  d.run_for(ms(500));  // the peer is silent
  ASSERT_EQ(d.s().state(), State::Down);
  const auto& c = d.s().counters();
  EXPECT_EQ(c.flaps[at(FlapCause::Timeout)], 1u);
  EXPECT_EQ(flaps_total(c), 1u);
  EXPECT_EQ(c.transitions[at(State::Up)][at(State::Down)], 1u);
  EXPECT_EQ(c.down_count, 1u);
}

// SM-13 and SM-12: the peer's Down and AdminDown are told apart.
TEST(SessionCountersTest, PeerDownAndPeerAdminDownAreSeparateCauses) {
  SessionDriver d(test::params(ms(50), ms(50)));
  d.bring_up();
  d.rx(peer(State::Down));
  ASSERT_EQ(d.s().state(), State::Down);  // SM-13
  EXPECT_EQ(d.s().counters().flaps[at(FlapCause::PeerDown)], 1u);
  d.rx(peer(State::Down));  // SM-04: Init
  d.rx(peer(State::Up));    // SM-10: Up
  ASSERT_EQ(d.s().state(), State::Up);
  d.rx(peer(State::AdminDown));
  ASSERT_EQ(d.s().state(), State::Down);
  const auto& c = d.s().counters();
  EXPECT_EQ(c.flaps[at(FlapCause::PeerAdminDown)], 1u);
  EXPECT_EQ(c.flaps[at(FlapCause::PeerDown)], 1u);
  EXPECT_EQ(flaps_total(c), c.down_count);
}

// SM-18, SM-22: a hold taking the session out of Up is a local-hold flap; a
// hold on a session that is not Up is no flap.
TEST(SessionCountersTest, HoldLeavingUpIsALocalHoldFlap) {
  SessionDriver d(test::params(ms(50), ms(50)));
  d.bring_up();
  d.hold(Hold::AdminDown);
  const auto& c = d.s().counters();
  EXPECT_EQ(c.flaps[at(FlapCause::LocalHold)], 1u);
  EXPECT_EQ(c.transitions[at(State::Up)][at(State::AdminDown)], 1u);
  d.hold(Hold::Down);  // AdminDown -> Down: not a flap
  EXPECT_EQ(c.transitions[at(State::AdminDown)][at(State::Down)], 1u);
  EXPECT_EQ(flaps_total(c), 1u);
}

// PKT-11: a dropped packet counts under its reason and nowhere else.
TEST(SessionCountersTest, DropsCountedByReason) {
  SessionDriver d(test::params(ms(50), ms(50)));
  auto p = peer(State::Down);
  p.your_discr = 0x9999;  // not ours: step 7
  d.rx(p);
  wire::ControlPacket auth = peer(State::Down).build();
  auth.auth_present = true;  // step 10
  d.rx(auth);
  const auto& c = d.s().counters();
  EXPECT_EQ(c.drops[static_cast<std::size_t>(DropReason::UnknownYourDiscriminator)], 1u);
  EXPECT_EQ(c.drops[static_cast<std::size_t>(DropReason::AuthPresentNotConfigured)], 1u);
  EXPECT_EQ(c.rx_dropped, 2u);
  EXPECT_EQ(c.rx_packets, 0u);
  d.s().count_drop(DropReason::WrongPort);
  EXPECT_EQ(c.drops[static_cast<std::size_t>(DropReason::WrongPort)], 1u);
  EXPECT_EQ(c.rx_dropped, 2u);  // the session's own drops only
}

// The gap histogram sees the time between two accepted packets.
TEST(SessionCountersTest, RxGapHistogramSeesThePeersGaps) {
  SessionDriver d(test::params(ms(50), ms(50)));
  d.bring_up();
  const GapHistogram before = d.s().counters().rx_gap;
  for (int i = 0; i < 10; ++i) {
    d.clock().advance(ms(40));
    d.rx(peer(State::Up));
  }
  d.clock().advance(ms(120));  // two lost packets
  d.rx(peer(State::Up));
  const GapHistogram& h = d.s().counters().rx_gap;
  EXPECT_EQ(h.count - before.count, 11u);
  // 40 ms lands in (20 ms, 50 ms], 120 ms in (100 ms, 200 ms].
  auto bucket_of = [](std::int64_t us) {
    const auto& b = GapBuckets::kBoundsUs;
    return static_cast<std::size_t>(std::lower_bound(b.begin(), b.end(), us) - b.begin());
  };
  EXPECT_EQ(h.counts[bucket_of(40'000)] - before.counts[bucket_of(40'000)], 10u);
  EXPECT_EQ(h.counts[bucket_of(120'000)] - before.counts[bucket_of(120'000)], 1u);
  EXPECT_EQ((h.sum - before.sum), ms(400 + 120));
}

// Each periodic packet records how late it left against its deadline.
TEST(SessionCountersTest, TxLatenessMeasuredAgainstTheDeadline) {
  SessionDriver d(test::params(ms(50), ms(50)));
  d.bring_up();
  const LatenessHistogram before = d.s().counters().tx_lateness;
  // On time: expire exactly at each deadline.
  for (int i = 0; i < 5; ++i) {
    d.clock().advance_to(d.s().next_deadline());
    d.record(d.s().expire(d.now()));
    d.rx(peer(State::Up));
  }
  const LatenessHistogram& h = d.s().counters().tx_lateness;
  EXPECT_EQ(h.count - before.count, 5u);
  EXPECT_EQ(h.counts[0] - before.counts[0], 5u);  // 0 us late
  EXPECT_EQ(h.sum, before.sum);
  // 3 ms late.
  d.clock().advance_to(d.s().next_deadline() + ms(3));
  auto fx = d.record(d.s().expire(d.now()));
  ASSERT_TRUE(fx.send);
  ASSERT_TRUE(fx.periodic);
  EXPECT_EQ(h.count - before.count, 6u);
  EXPECT_EQ(h.sum - before.sum, ms(3));
}

}  // namespace
}  // namespace beacon::core
