// Session timers: TMR-01..TMR-20, CI-02/04, DE-03, DIS-05/06, SM-02, PKT-33,
// next_deadline(). Everything on a FakeClock.
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "beacon/core/session.hpp"
#include "session_driver.hpp"

namespace beacon::core {
namespace {

using test::ms;
using test::params;
using test::peer;
using test::PeerPacket;
using test::SessionDriver;
using wire::State;

// A peer that keeps us from timing out for a long while: DM 255 x 10 s.
PeerPacket patient_peer(State st = State::Up) {
  PeerPacket p = peer(st);
  p.detect_mult = 255;
  p.desired_min_tx_us = 10'000'000;
  return p;
}

std::vector<Duration> periodic_gaps(const std::vector<test::SentPacket>& sent, TimePoint from) {
  std::vector<Duration> gaps;
  std::optional<TimePoint> prev;
  for (const auto& p : sent) {
    if (!p.periodic || p.at < from) continue;
    if (prev) gaps.push_back(p.at - *prev);
    prev = p.at;
  }
  return gaps;
}

// --------------------------------------------------------------- TMR-04, 05

TEST(SessionTimers, TMR04_CI04_OneSecondWhileNotUp) {
  SessionDriver d(params(ms(50), ms(50)));
  EXPECT_EQ(d.s().current_packet().desired_min_tx_us, 1'000'000u);  // Down
  d.rx(peer(State::Down));
  ASSERT_EQ(d.s().state(), State::Init);
  EXPECT_EQ(d.s().current_packet().desired_min_tx_us, 1'000'000u);  // Init
  EXPECT_EQ(d.s().tx_interval(), kOneSecond);
  d.hold(Hold::AdminDown);
  EXPECT_EQ(d.s().current_packet().desired_min_tx_us, 1'000'000u);  // AdminDown (ADM-03)
  // A configured interval above 1 s is used as is.
  SessionDriver slow(params(Duration{10'000'000}, ms(50)));
  EXPECT_EQ(slow.s().current_packet().desired_min_tx_us, 10'000'000u);
}

TEST(SessionTimers, TMR05_UpStartsPollWithConfiguredValues) {
  SessionDriver d(params(ms(50), ms(50)));
  d.rx(peer(State::Down));
  EXPECT_EQ(d.s().counters().polls_started, 0u);
  const Effects fx = d.rx(peer(State::Up));
  ASSERT_EQ(d.s().state(), State::Up);
  EXPECT_TRUE(d.s().poll_active());
  EXPECT_EQ(d.s().counters().polls_started, 1u);
  ASSERT_TRUE(fx.send);
  EXPECT_TRUE(fx.send->poll);
  EXPECT_EQ(fx.send->desired_min_tx_us, 50'000u);
  // Lowering tx applies at once (TMR-10): we already send at 50 ms.
  EXPECT_EQ(d.s().tx_interval(), ms(50));
  // Periodic packets carry P until the F arrives (TMR-11), then not.
  const std::size_t before = d.sent().size();
  d.run_for(ms(140));  // inside the 150 ms detection time
  ASSERT_GE(d.sent().size(), before + 2);
  for (std::size_t i = before; i < d.sent().size(); ++i) {
    EXPECT_TRUE(d.sent()[i].periodic);
    EXPECT_TRUE(d.sent()[i].pkt.poll);
  }
  auto f = peer(State::Up);
  f.final = true;
  d.rx(f);
  EXPECT_FALSE(d.s().poll_active());
  const std::size_t after = d.sent().size();
  d.run_for(ms(140));
  ASSERT_GE(d.sent().size(), after + 2);
  for (std::size_t i = after; i < d.sent().size(); ++i) EXPECT_FALSE(d.sent()[i].pkt.poll);
}

TEST(SessionTimers, TMR04_LeavingUpReturnsToOneSecondAtOnce) {
  SessionDriver d(params(ms(50), ms(50)));
  d.bring_up();
  ASSERT_EQ(d.s().tx_interval(), ms(50));
  const Effects fx = d.rx(peer(State::Down));
  ASSERT_TRUE(fx.send);
  EXPECT_EQ(fx.send->desired_min_tx_us, 1'000'000u);
  EXPECT_EQ(d.s().tx_interval(), kOneSecond);
  EXPECT_EQ(d.s().effective_desired_min_tx(), kOneSecond);
  // TMR-05: the change is polled too, once the TMR-14 guard (100 ms after our
  // last P) has passed.
  EXPECT_TRUE(d.s().poll_active() || d.s().poll_queued());
  d.run_for(ms(100));
  EXPECT_TRUE(d.s().poll_active());
}

// --------------------------------------------------------------- TMR-01..03

TEST(SessionTimers, TMR01_IntervalIsMaxOfOursAndRemoteMinRx) {
  SessionDriver d(params(ms(50), ms(50)));
  auto p = patient_peer(State::Down);
  p.required_min_rx_us = 300'000;
  d.bring_up(p);
  EXPECT_EQ(d.s().tx_interval(), ms(300));
  const TimePoint t0 = d.now();
  d.run_for(Duration{30'000'000});
  const auto gaps = periodic_gaps(d.sent(), t0);
  ASSERT_GE(gaps.size(), 90u);
  for (Duration g : gaps) {
    EXPECT_GE(g, ms(225));
    EXPECT_LE(g, ms(300));
  }
}

struct JitterStats {
  double min = 1e9, max = 0, mean = 0;
  std::size_t n = 0;
};

JitterStats jitter_stats(std::uint8_t dm, std::uint64_t seed) {
  SessionDriver d(params(ms(50), ms(50), dm), seed);
  d.bring_up(patient_peer(State::Down));
  EXPECT_EQ(d.s().tx_interval(), ms(50));
  const TimePoint t0 = d.now();
  d.run_for(ms(50) * 10'050);  // > 10k intervals, well inside 255 x 10 s
  EXPECT_EQ(d.s().state(), State::Up);
  JitterStats st;
  double sum = 0;
  for (Duration g : periodic_gaps(d.sent(), t0)) {
    const double r = static_cast<double>(g.count()) / 50'000.0;
    st.min = std::min(st.min, r);
    st.max = std::max(st.max, r);
    sum += r;
    ++st.n;
  }
  st.mean = sum / static_cast<double>(st.n);
  return st;
}

TEST(SessionTimers, TMR02_JitterWithin75To100Percent) {
  const JitterStats st = jitter_stats(3, 7);
  EXPECT_GE(st.n, 10'000u);
  EXPECT_GE(st.min, 0.75);
  EXPECT_LE(st.max, 1.0);
  EXPECT_NEAR(st.mean, 0.875, 0.01);
  EXPECT_LT(st.min, 0.76);  // the whole range is used
  EXPECT_GT(st.max, 0.99);
}

TEST(SessionTimers, TMR03_JitterWithin75To90PercentWhenDetectMultIsOne) {
  const JitterStats st = jitter_stats(1, 11);
  EXPECT_GE(st.n, 10'000u);
  EXPECT_GE(st.min, 0.75);
  EXPECT_LE(st.max, 0.90);
  EXPECT_NEAR(st.mean, 0.825, 0.01);
  EXPECT_GT(st.max, 0.89);
}

TEST(SessionTimers, TMR02_DifferentSeedsGiveDifferentSchedules) {
  SessionDriver a(params(ms(50), ms(50)), 1);
  SessionDriver b(params(ms(50), ms(50)), 2);
  a.run_for(Duration{10'000'000});
  b.run_for(Duration{10'000'000});
  ASSERT_EQ(a.sent().size() > 3, true);
  EXPECT_NE(a.sent()[2].at, b.sent()[2].at);
}

// --------------------------------------------------------------- detection

TEST(SessionTimers, TMR09_DetectionTimeExactExpiry) {
  SessionDriver d(params(ms(50), ms(50)));
  auto p = peer(State::Down);
  p.desired_min_tx_us = 100'000;
  d.bring_up(p);
  p.state = State::Up;
  d.rx(p);
  const TimePoint last = d.now();
  EXPECT_EQ(d.s().detection_time(), ms(300));  // 3 x max(50, 100)
  d.run_until(last + ms(300) - Duration{1});
  EXPECT_EQ(d.s().state(), State::Up);
  EXPECT_EQ(d.s().remote_discr(), test::kPeerDiscr);
  d.run_until(last + ms(300));
  EXPECT_EQ(d.s().state(), State::Down);
  EXPECT_EQ(d.s().local_diag(), 1);
  ASSERT_FALSE(d.sent().empty());
  EXPECT_EQ(d.sent().back().at, last + ms(300));  // SM-21: Down sent at once
  EXPECT_EQ(d.sent().back().pkt.state, State::Down);
  EXPECT_EQ(d.sent().back().pkt.diag, 1);
}

TEST(SessionTimers, TMR09_DetectionUsesOurRxWhenLarger) {
  SessionDriver d(params(ms(50), ms(200)));
  auto p = peer(State::Down);
  p.desired_min_tx_us = 20'000;
  p.detect_mult = 4;
  d.rx(p);
  EXPECT_EQ(d.s().detection_time(), ms(800));
}

TEST(SessionTimers, PKT30_EveryAcceptedPacketRestartsDetection) {
  SessionDriver d(params(ms(50), ms(50)));
  d.bring_up();
  for (int i = 0; i < 100; ++i) {
    d.run_for(ms(140));  // < 150 ms detection time
    d.rx(peer(State::Up));
  }
  EXPECT_EQ(d.s().state(), State::Up);
  EXPECT_EQ(d.s().counters().detect_timeouts, 0u);
}

TEST(SessionTimers, CI02_DetectMult255Times10sNoOverflow) {
  SessionDriver d(params(Duration{10'000'000}, Duration{10'000'000}));
  auto p = peer(State::Down);
  p.detect_mult = 255;
  p.desired_min_tx_us = 10'000'000;
  p.required_min_rx_us = 10'000'000;
  d.bring_up(p);
  const TimePoint last = *d.s().last_rx();
  EXPECT_EQ(d.s().detection_time(), Duration{2'550'000'000LL});  // 42.5 min
  d.run_until(last + Duration{2'550'000'000LL} - Duration{1});
  EXPECT_EQ(d.s().state(), State::Up);
  d.run_until(last + Duration{2'550'000'000LL});
  EXPECT_EQ(d.s().state(), State::Down);
  // Also the largest wire values: 255 x (2^32 - 1) us does not overflow.
  SessionDriver e(params(ms(50), ms(50)));
  p.desired_min_tx_us = 0xFFFF'FFFF;
  e.rx(p);
  EXPECT_EQ(e.s().detection_time(), Duration{255LL * 0xFFFF'FFFFLL});
  EXPECT_GT(e.s().next_deadline(), e.now());
}

TEST(SessionTimers, PKT33_RemoteDesiredMinTxZeroGivesNoZeroDetectionTime) {
  SessionDriver d(params(ms(50), ms(50)));
  auto p = peer(State::Down);
  p.desired_min_tx_us = 0;
  p.diag = 31;
  EXPECT_EQ(d.rx(p).drop, wire::DropReason::None);
  EXPECT_EQ(d.s().detection_time(), ms(150));  // falls back to our rx
  // Our rx 0 as well: 1 s per interval rather than zero.
  SessionDriver z(params(ms(50), Duration{0}));
  z.rx(p);
  EXPECT_EQ(z.s().detection_time(), Duration{3'000'000});
}

// --------------------------------------------------------- DIS-05, TMR-17

TEST(SessionTimers, SM02_DIS05_RemoteForgottenAfterOneDetectionTimeInDown) {
  SessionDriver d(params(ms(50), ms(50)));
  auto p = peer(State::AdminDown);
  p.required_min_rx_us = 2'000'000;
  d.rx(p);  // stays Down
  const TimePoint last = d.now();
  const Duration dt = d.s().detection_time();
  ASSERT_EQ(dt, ms(150));
  d.run_until(last + dt - Duration{1});
  EXPECT_EQ(d.s().remote_discr(), test::kPeerDiscr);  // SM-02: kept for DT
  EXPECT_EQ(d.s().remote_min_rx(), Duration{2'000'000});
  EXPECT_EQ(d.s().current_packet().your_discriminator, test::kPeerDiscr);
  d.run_until(last + dt);
  EXPECT_EQ(d.s().remote_discr(), 0u);
  EXPECT_EQ(d.s().remote_min_rx(), Duration{1});
  EXPECT_EQ(d.s().current_packet().your_discriminator, 0u);
  EXPECT_EQ(d.s().state(), State::Down);  // SM-07
  EXPECT_EQ(d.s().local_diag(), 0);
}

TEST(SessionTimers, TMR17_PeerAdvertised10sThenSilentWeSendAtOneSecond) {
  SessionDriver d(params(ms(50), ms(50)));
  auto p = peer(State::Down);
  p.required_min_rx_us = 10'000'000;
  d.bring_up(p);
  EXPECT_EQ(d.s().tx_interval(), Duration{10'000'000});
  const TimePoint last = *d.s().last_rx();
  d.run_until(last + d.s().detection_time());
  EXPECT_EQ(d.s().state(), State::Down);
  EXPECT_EQ(d.s().remote_min_rx(), Duration{1});
  EXPECT_EQ(d.s().tx_interval(), kOneSecond);
  const TimePoint t0 = d.now();
  d.run_for(Duration{10'000'000});
  const auto gaps = periodic_gaps(d.sent(), t0);
  ASSERT_GE(gaps.size(), 9u);
  for (Duration g : gaps) EXPECT_LE(g, kOneSecond);
}

// ------------------------------------------------------------ TMR-15, 16

TEST(SessionTimers, TMR15_RemoteMinRxZeroStopsPeriodicButPollStillAnswered) {
  SessionDriver d(params(ms(50), ms(50)));
  auto p = patient_peer(State::Down);
  d.bring_up(p);
  p.state = State::Up;
  p.required_min_rx_us = 0;
  d.rx(p);
  EXPECT_EQ(d.s().tx_interval(), Duration{0});
  const std::size_t before = d.sent().size();
  d.run_for(Duration{20'000'000});
  EXPECT_EQ(d.sent().size(), before);
  p.poll = true;
  const Effects fx = d.rx(p);
  ASSERT_TRUE(fx.send);
  EXPECT_TRUE(fx.send->final);
  // A state change still goes out at once.
  p.poll = false;
  p.state = State::Down;
  EXPECT_TRUE(d.rx(p).send.has_value());
}

TEST(SessionTimers, TMR16_DIS06_PassiveSendsNothingUntilPeerSpeaks) {
  SessionDriver d(params(ms(50), ms(50), 3, true));
  EXPECT_EQ(d.s().next_deadline(), TimePoint::max());
  EXPECT_EQ(d.s().tx_interval(), Duration{0});
  d.run_for(Duration{60'000'000});
  EXPECT_TRUE(d.sent().empty());
  // Holds do not make a passive session speak either.
  EXPECT_FALSE(d.hold(Hold::AdminDown).send.has_value());
  EXPECT_FALSE(d.hold(Hold::None).send.has_value());
  EXPECT_TRUE(d.sent().empty());
  const Effects fx = d.rx(peer(State::Down));
  ASSERT_TRUE(fx.send);  // Init at once
  EXPECT_EQ(fx.send->state, State::Init);
  // Silent peer: after one detection time the session forgets it and goes
  // quiet again (RemoteDiscr = 0).
  d.run_for(Duration{10'000'000});
  EXPECT_EQ(d.s().remote_discr(), 0u);
  const std::size_t quiet = d.sent().size();
  d.run_for(Duration{10'000'000});
  EXPECT_EQ(d.sent().size(), quiet);
}

TEST(SessionTimers, TMR16_SwitchingPassiveToActiveStartsSending) {
  SessionDriver d(params(ms(50), ms(50), 3, true));
  const Effects fx = d.set_params(params(ms(50), ms(50), 3, false));
  ASSERT_TRUE(fx.send);  // the first packet is due at once
  EXPECT_TRUE(fx.periodic);
  d.run_for(Duration{3'000'000});
  EXPECT_GE(d.sent().size(), 3u);
}

// --------------------------------------------------------------- DE-03

TEST(SessionTimers, DE03_PeerDemandStopsPeriodicAndResumes) {
  SessionDriver d(params(ms(50), ms(50)));
  auto p = patient_peer(State::Down);
  d.bring_up(p);
  p.state = State::Up;
  p.demand = true;
  d.rx(p);
  EXPECT_EQ(d.s().tx_interval(), Duration{0});
  const std::size_t before = d.sent().size();
  d.run_for(Duration{5'000'000});
  EXPECT_EQ(d.sent().size(), before);
  // The peer's Poll (its demand-mode check) still gets an F.
  p.poll = true;
  ASSERT_TRUE(d.rx(p).send.has_value());
  EXPECT_TRUE(d.sent().back().pkt.final);
  p.poll = false;
  p.demand = false;
  const Effects fx = d.rx(p);
  ASSERT_TRUE(fx.send) << "periodic tx resumes at once: the interval elapsed";
  EXPECT_TRUE(fx.periodic);
  EXPECT_EQ(d.s().tx_interval(), ms(50));
}

TEST(SessionTimers, DE03_DemandBitIgnoredUnlessBothUp) {
  SessionDriver d(params(ms(50), ms(50)));
  auto p = peer(State::Down);
  p.demand = true;
  d.rx(p);  // we are Init, peer Down: Demand not active
  EXPECT_EQ(d.s().tx_interval(), kOneSecond);
}

// --------------------------------------------------------------- TMR-08

TEST(SessionTimers, TMR08_PeerLowersRequiredMinRxFasterRateAtOnce) {
  SessionDriver d(params(ms(10), ms(10)));
  auto p = patient_peer(State::Down);
  p.required_min_rx_us = 1'000'000;
  d.bring_up(p);
  EXPECT_EQ(d.s().tx_interval(), kOneSecond);
  d.run_for(ms(300));  // last periodic packet was some time ago
  p.state = State::Up;
  p.required_min_rx_us = 10'000;
  p.poll = true;  // the peer polls for its change
  const Effects fx = d.rx(p);
  ASSERT_TRUE(fx.send);
  EXPECT_TRUE(fx.send->final);
  EXPECT_TRUE(fx.periodic) << "new interval had elapsed: this is the periodic packet";
  EXPECT_EQ(d.s().tx_interval(), ms(10));
  EXPECT_LE(d.s().next_deadline() - d.now(), ms(10));
}

TEST(SessionTimers, TMR08_NotElapsedYetSchedulesFromLastPacket) {
  SessionDriver d(params(ms(10), ms(10)));
  auto p = patient_peer(State::Down);
  p.required_min_rx_us = 1'000'000;
  d.bring_up(p);
  d.run_for(Duration{2'000'000});
  d.run_until(d.s().next_deadline());  // a periodic packet goes out now
  const TimePoint last_periodic = d.periodic_since(TimePoint{}).back().at;
  ASSERT_EQ(last_periodic, d.now());
  d.clock().advance(Duration{1'000});
  p.state = State::Up;
  p.required_min_rx_us = 100'000;
  const Effects fx = d.rx(p);
  EXPECT_FALSE(fx.send);
  EXPECT_GE(d.s().next_deadline(), last_periodic + ms(75));
  EXPECT_LE(d.s().next_deadline(), last_periodic + ms(100));
}

TEST(SessionTimers, TMR01_PeerRaisesRequiredMinRxWeSlowDown) {
  SessionDriver d(params(ms(10), ms(10)));
  auto p = patient_peer(State::Down);
  p.required_min_rx_us = 10'000;
  d.bring_up(p);
  p.state = State::Up;
  p.required_min_rx_us = 500'000;
  d.rx(p);
  const TimePoint t0 = d.now();
  d.run_for(Duration{10'000'000});
  for (Duration g : periodic_gaps(d.sent(), t0)) {
    EXPECT_GE(g, ms(375));
    EXPECT_LE(g, ms(500));
  }
}

// --------------------------------------------------------------- TMR-20

TEST(SessionTimers, TMR20_DeadlinesCountFromPreviousDeadlineNotFromLateness) {
  SessionDriver d(params(ms(10), ms(10)));
  auto p = patient_peer(State::Down);
  p.required_min_rx_us = 10'000;
  d.bring_up(p);
  ASSERT_EQ(d.s().tx_interval(), ms(10));
  d.run_for(ms(100));
  // The engine runs 300 us late on every expiry: the schedule must not drift.
  std::vector<TimePoint> deadlines;
  for (int i = 0; i < 100'000; ++i) {
    const TimePoint dl = d.s().next_deadline();
    deadlines.push_back(dl);
    d.clock().advance_to(dl + Duration{300});
    d.record(d.s().expire(d.now()));
  }
  for (std::size_t i = 1; i < deadlines.size(); ++i) {
    const Duration g = deadlines[i] - deadlines[i - 1];
    ASSERT_GE(g, Duration{7'500});
    ASSERT_LE(g, ms(10));
  }
  // 10^5 packets at a mean of 8.75 ms: the total matches the deadlines, not
  // deadlines + 100'000 x 300 us.
  const double mean = static_cast<double>((deadlines.back() - deadlines.front()).count()) /
                      static_cast<double>(deadlines.size() - 1);
  EXPECT_NEAR(mean, 8'750.0, 50.0);
}

TEST(SessionTimers, TMR20_FarBehindResyncsToNow) {
  SessionDriver d(params(ms(10), ms(10)));
  d.bring_up(patient_peer(State::Down));
  d.run_for(ms(100));
  const TimePoint dl = d.s().next_deadline();
  d.clock().advance_to(dl + ms(55));  // engine stalled for > 5 intervals
  const Effects fx = d.s().expire(d.now());
  ASSERT_TRUE(fx.send);
  EXPECT_TRUE(fx.periodic);
  // One packet, then the schedule restarts from now (no burst of catch-ups).
  EXPECT_GT(d.s().next_deadline(), d.now());
  EXPECT_GE(d.s().next_deadline(), d.now() + Duration{7'500});
}

// Up at 10 ms both ways with a patient peer (no timeout for a long while).
void up_at_10ms(SessionDriver& d) {
  auto p = patient_peer(State::Down);
  p.required_min_rx_us = 10'000;
  d.bring_up(p);
  ASSERT_EQ(d.s().tx_interval(), ms(10));
}

// ------------------------------------------------ §6.8.7 75 % gap, as sent

// Gaps between consecutive packets that are not Finals, as they left.
std::vector<Duration> non_final_gaps(const std::vector<test::SentPacket>& sent, TimePoint from) {
  std::vector<Duration> gaps;
  std::optional<TimePoint> prev;
  for (const auto& p : sent) {
    if (p.pkt.final || p.at < from) continue;
    if (prev) gaps.push_back(p.at - *prev);
    prev = p.at;
  }
  return gaps;
}

// TMR-02 as the peer sees it: the engine wakes up late by a random amount (up
// to 90 % of the interval); no two packets may leave closer than 75 % of the
// interval, which counting the next slot from the missed deadline breaks.
TEST(SessionTimers, TMR02_LateWakeUpsNeverSendTwoPacketsCloserThan75Percent) {
  SessionDriver d(params(ms(10), ms(10)));
  up_at_10ms(d);
  const TimePoint from = d.now();
  std::uint64_t rng = 7;
  for (int i = 0; i < 20'000; ++i) {
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    const Duration late{static_cast<std::int64_t>((rng >> 33) % 9'000)};
    d.clock().advance_to(d.s().next_deadline() + late);
    d.record(d.s().expire(d.now()));
  }
  const auto gaps = non_final_gaps(d.sent(), from);
  ASSERT_GT(gaps.size(), 15'000u);
  EXPECT_GE(*std::min_element(gaps.begin(), gaps.end()), Duration{7'500});
}

// §6.8.7 / SM-21: a packet announcing a change leaves at once, off the
// schedule; the next periodic packet then counts from it. Seen in the field:
// two Init packets 137 ms apart at a 1 s interval, because the periodic slot
// drawn before the change was kept.
TEST(SessionTimers, TMR02_PacketAfterAnAnnouncedChangeCountsFromIt) {
  for (std::uint64_t seed = 1; seed <= 50; ++seed) {
    SessionDriver d(params(ms(10), ms(10)), seed);
    d.run_for(ms(5'000));  // Down, sending at 1 s
    // The peer speaks just before our next slot: Down -> Init goes out at once.
    const TimePoint slot = d.s().next_deadline();
    d.run_until(slot - ms(5));
    const Effects fx = d.rx(patient_peer(State::Down));
    ASSERT_TRUE(fx.change);
    ASSERT_EQ(d.s().state(), State::Init);
    ASSERT_TRUE(fx.send);
    const TimePoint announced = d.now();
    d.run_for(ms(3'000));  // still Init: the patient peer's detection time is long
    ASSERT_EQ(d.s().state(), State::Init);
    const auto gaps = non_final_gaps(d.sent(), announced);
    ASSERT_FALSE(gaps.empty());
    EXPECT_GE(*std::min_element(gaps.begin(), gaps.end()), ms(750)) << "seed " << seed;
  }
}

// Coalesced wake-ups: with tx_slack the engine may serve a transmit deadline
// up to the slack early; the jitter's lower bound grows by as much, so the
// packets as sent are still never closer than 75 % of the interval. Detection
// is never served early.
TEST(SessionTimers, TMR02_TxSlackSendsEarlyButNeverCloserThan75Percent) {
  auto prm = params(ms(10), ms(10));
  prm.tx_slack = Duration{200};
  SessionDriver d(prm);
  up_at_10ms(d);
  const TimePoint from = d.now();
  std::uint64_t rng = 11;
  for (int i = 0; i < 20'000; ++i) {
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    // Served anywhere from 200 us early to 2 ms late.
    const auto offset = static_cast<std::int64_t>((rng >> 33) % 2'200) - 200;
    d.clock().advance_to(std::max(d.now(), d.s().next_deadline() + Duration{offset}));
    d.record(d.s().expire(d.now()));
  }
  const auto gaps = non_final_gaps(d.sent(), from);
  ASSERT_GT(gaps.size(), 15'000u);
  EXPECT_GE(*std::min_element(gaps.begin(), gaps.end()), Duration{7'500});
  EXPECT_LE(*std::max_element(gaps.begin(), gaps.end()), ms(10) + ms(2) + Duration{200});
}

// A batching transport: each packet leaves up to tx_delay after it was handed
// out. The jitter's lower bound grows by as much, so the gaps as they leave
// the box (a packet that waited at the end of one batch, the next sent first
// in its batch) still never fall below 75 % (§6.8.7).
TEST(SessionTimers, TMR02_TxDelayOfABatchNeverPutsDeparturesCloserThan75Percent) {
  auto prm = params(ms(10), ms(10));
  prm.tx_slack = Duration{50};
  prm.tx_delay = Duration{150};
  SessionDriver d(prm);
  up_at_10ms(d);
  const std::size_t first = d.sent().size();
  std::uint64_t rng = 5;
  std::vector<TimePoint> departures;
  for (int i = 0; i < 20'000; ++i) {
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    const auto early = static_cast<std::int64_t>((rng >> 33) % 51);  // served up to the slot early
    d.clock().advance_to(std::max(d.now(), d.s().next_deadline() - Duration{early}));
    const auto fx = d.record(d.s().expire(d.now()));
    if (fx.send && fx.periodic) {
      rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
      departures.push_back(d.now() + Duration{static_cast<std::int64_t>((rng >> 33) % 151)});
    }
  }
  ASSERT_GT(d.sent().size() - first, 15'000u);
  Duration min_gap = Duration::max();
  for (std::size_t i = 1; i < departures.size(); ++i) {
    min_gap = std::min(min_gap, departures[i] - departures[i - 1]);
  }
  EXPECT_GE(min_gap, Duration{7'500});
}

TEST(SessionTimers, TxSlackDoesNotServeATransmitDeadlineBeyondIt) {
  auto prm = params(ms(10), ms(10));
  prm.tx_slack = Duration{200};
  SessionDriver d(prm);
  up_at_10ms(d);
  d.run_for(ms(50));
  const TimePoint dl = d.s().next_deadline();
  d.clock().advance_to(dl - Duration{201});
  EXPECT_FALSE(d.record(d.s().expire(d.now())).send);
  d.clock().advance_to(dl - Duration{200});
  EXPECT_TRUE(d.record(d.s().expire(d.now())).send);
}

TEST(SessionTimers, TxSlackNeverDeclaresDetectionEarly) {
  auto prm = params(ms(10), ms(10));
  prm.tx_slack = Duration{1'000};
  SessionDriver d(prm);
  d.bring_up(peer(State::Down));
  ASSERT_EQ(d.s().state(), State::Up);
  const TimePoint last = *d.s().last_rx();
  const Duration dt = d.s().detection_time();
  d.run_until(last + dt - Duration{1});  // served with the slack: still Up
  EXPECT_EQ(d.s().state(), State::Up);
  d.run_until(last + dt);
  EXPECT_EQ(d.s().state(), State::Down);
}

// Start-up spread: the first packet may be deferred (many sessions started at
// once), and only the first one.
TEST(SessionTimers, FirstPacketCanBeDeferredOnlyBeforeAnythingWasSent) {
  SessionDriver d(params(ms(10), ms(10)));
  EXPECT_EQ(d.s().next_deadline(), d.now());  // an active session is due at once
  d.s().defer_first_packet(d.now() + ms(300));
  EXPECT_EQ(d.s().next_deadline(), d.now() + ms(300));
  d.run_for(ms(299));
  EXPECT_TRUE(d.sent().empty());
  d.run_for(ms(1));
  ASSERT_EQ(d.sent().size(), 1u);
  // Once it spoke, the schedule is its own.
  const TimePoint next = d.s().next_deadline();
  d.s().defer_first_packet(next + ms(500));
  EXPECT_EQ(d.s().next_deadline(), next);
}

// A hold while Up: the announcing Down packet, then the slow schedule from it.
TEST(SessionTimers, TMR02_HoldAnnouncementRebasesTheSchedule) {
  SessionDriver d(params(ms(10), ms(10)));
  d.bring_up(patient_peer(State::Down));
  d.run_for(ms(3) + Duration{333});
  const TimePoint t = d.now();
  ASSERT_TRUE(d.hold(Hold::Down, 5).send);
  d.run_for(ms(5'000));
  const auto gaps = non_final_gaps(d.sent(), t);
  ASSERT_GE(gaps.size(), 4u);
  EXPECT_GE(*std::min_element(gaps.begin(), gaps.end()), ms(750));
}

// On remote expiry the peer is no longer "Up": its state is reset with the
// other remote variables, so clients do not show a dead peer as Up.
TEST(SessionTimers, DIS05_RemoteStateResetWhenThePeerFallsSilent) {
  SessionDriver d(params(ms(10), ms(10)));
  d.bring_up(peer(State::Down));
  ASSERT_EQ(d.s().remote_state(), State::Up);
  d.run_for(ms(2'000));  // silence: Up -> Down (diag 1), then remote expiry
  EXPECT_EQ(d.s().state(), State::Down);
  EXPECT_EQ(d.s().local_diag(), 1);
  EXPECT_EQ(d.s().remote_discr(), 0u);
  EXPECT_EQ(d.s().remote_state(), State::Down);
  EXPECT_EQ(d.s().remote_diag(), 0);
}

TEST(SessionTimers, NextDeadlineIsEarliestOfTxDetectAndRemoteExpiry) {
  SessionDriver d(params(Duration{2'000'000}, ms(50)));
  auto p = peer(State::Down);
  p.desired_min_tx_us = 10'000;  // detection 3 x 50 ms
  d.rx(p);
  ASSERT_EQ(d.s().state(), State::Init);
  d.run_for(ms(10));
  // tx at >= 1.5 s, detection at last_rx + 150 ms.
  EXPECT_EQ(d.s().next_deadline(), *d.s().last_rx() + ms(150));
  d.run_until(*d.s().last_rx() + ms(150));
  EXPECT_EQ(d.s().state(), State::Down);
  // Now only tx remains.
  EXPECT_GT(d.s().next_deadline(), d.now() + ms(500));
  EXPECT_LT(d.s().next_deadline(), TimePoint::max());
}

TEST(SessionTimers, TMR10_DetectMultChangeAppliesAtOnceWithoutPoll) {
  SessionDriver d(params(ms(50), ms(50)));
  d.bring_up();
  const std::uint64_t polls = d.s().counters().polls_started;
  const std::size_t before = d.sent().size();
  d.set_params(params(ms(50), ms(50), 5));
  EXPECT_FALSE(d.s().poll_active());
  EXPECT_EQ(d.s().counters().polls_started, polls);
  d.run_for(ms(60));
  ASSERT_GT(d.sent().size(), before);
  EXPECT_EQ(d.sent()[before].pkt.detect_mult, 5);
  EXPECT_FALSE(d.sent()[before].pkt.poll);
}

}  // namespace
}  // namespace beacon::core
