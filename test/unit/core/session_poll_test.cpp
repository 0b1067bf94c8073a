// Poll/Final (§6.5, §6.8.3, §6.8.6 steps 15/21): PKT-03, PKT-26, PKT-29,
// TMR-05..07, TMR-10..14, ADM-05 (see also session_fsm_test.cpp), DE-03 polls.
//
// TMR-13 (MAY put our pending values into a Final) is not done: our Final
// always carries the advertised values and our own Poll follows.
#include <gtest/gtest.h>

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

// Peer with a long detection time (255 x 10 s) so tests can run for a while.
PeerPacket patient(State st, std::uint32_t rx_us = 10'000) {
  PeerPacket p = peer(st);
  p.detect_mult = 255;
  p.desired_min_tx_us = 10'000'000;
  p.required_min_rx_us = rx_us;
  return p;
}

// Up at 50 ms / 50 ms with the first Poll finished.
SessionDriver up_session(PeerPacket base = patient(State::Down)) {
  SessionDriver d(params(ms(50), ms(50)));
  d.bring_up(base);
  EXPECT_EQ(d.s().state(), State::Up);
  EXPECT_FALSE(d.s().poll_active());
  return d;
}

TEST(SessionPoll, PKT29_TMR12_PollAnsweredAtOnceWithFinalInEveryState) {
  for (State local : {State::Down, State::Init, State::Up}) {
    SessionDriver d(params(ms(50), ms(50)));
    d.run_until(d.now());  // first periodic packet out of the way
    if (local != State::Down) d.rx(peer(State::Down));
    if (local == State::Up) d.rx(peer(State::Up));
    ASSERT_EQ(d.s().state(), local);
    d.clock().advance(Duration{10});
    auto p = peer(local == State::Down ? State::AdminDown : State::Up);
    p.poll = true;
    const std::uint64_t finals = d.s().counters().finals_sent;
    const Effects fx = d.rx(p);
    ASSERT_TRUE(fx.send);
    EXPECT_TRUE(fx.send->final);
    EXPECT_FALSE(fx.send->poll);  // PKT-03
    EXPECT_EQ(d.s().counters().finals_sent, finals + 1);
  }
}

TEST(SessionPoll, PKT03_FinalNeverCarriesPWhileOurPollRuns) {
  SessionDriver d = up_session();
  d.set_params(params(ms(100), ms(50)));
  ASSERT_TRUE(d.s().poll_active());
  auto p = patient(State::Up);
  p.poll = true;
  const Effects fx = d.rx(p);
  ASSERT_TRUE(fx.send);
  EXPECT_TRUE(fx.send->final);
  EXPECT_FALSE(fx.send->poll);
  EXPECT_TRUE(d.s().poll_active());  // our Poll goes on
  d.run_for(ms(60));
  ASSERT_FALSE(d.sent().empty());
  EXPECT_TRUE(d.sent().back().pkt.poll);
  EXPECT_FALSE(d.sent().back().pkt.final);
  for (const auto& s : d.sent()) EXPECT_FALSE(s.pkt.poll && s.pkt.final);
}

TEST(SessionPoll, PKT26_FinalWithoutOurPollChangesNothing) {
  SessionDriver d = up_session();
  const wire::ControlPacket before = d.s().current_packet();
  auto f = patient(State::Up);
  f.final = true;
  const Effects fx = d.rx(f);
  EXPECT_FALSE(fx.change);
  EXPECT_FALSE(d.s().poll_active());
  EXPECT_EQ(d.s().current_packet(), before);
}

TEST(SessionPoll, TMR06_RaisedTxWaitsForFinal) {
  SessionDriver d = up_session();
  ASSERT_EQ(d.s().tx_interval(), ms(50));
  d.set_params(params(ms(100), ms(50)));
  EXPECT_TRUE(d.s().poll_active());
  EXPECT_EQ(d.s().current_packet().desired_min_tx_us, 100'000u);  // advertised
  EXPECT_EQ(d.s().effective_desired_min_tx(), ms(50));            // in use
  EXPECT_EQ(d.s().tx_interval(), ms(50));
  // Peer withholds F for 2 s (but keeps talking): old rate continues.
  const std::size_t before = d.sent().size();
  for (int i = 0; i < 20; ++i) {
    d.run_for(ms(100));
    d.rx(patient(State::Up));
  }
  std::optional<TimePoint> prev;
  for (std::size_t i = before; i < d.sent().size(); ++i) {
    const auto& s = d.sent()[i];
    if (!s.periodic) continue;
    EXPECT_TRUE(s.pkt.poll);
    if (prev) {
      EXPECT_LE(s.at - *prev, ms(50));
    }
    prev = s.at;
  }
  auto f = patient(State::Up);
  f.final = true;
  d.rx(f);  // PKT-26
  EXPECT_FALSE(d.s().poll_active());
  EXPECT_EQ(d.s().effective_desired_min_tx(), ms(100));
  EXPECT_EQ(d.s().tx_interval(), ms(100));
}

TEST(SessionPoll, TMR07_LoweredRxKeepsOldDetectionTimeUntilFinal) {
  SessionDriver d(params(ms(50), ms(50)));
  auto p = peer(State::Down);
  p.desired_min_tx_us = 10'000;
  d.bring_up(p);
  ASSERT_EQ(d.s().detection_time(), ms(150));
  d.set_params(params(ms(50), ms(20)));
  EXPECT_EQ(d.s().current_packet().required_min_rx_us, 20'000u);
  EXPECT_EQ(d.s().effective_required_min_rx(), ms(50));
  EXPECT_EQ(d.s().detection_time(), ms(150));
  p.state = State::Up;
  d.run_for(ms(100));
  d.rx(p);  // no F: still the old value
  EXPECT_EQ(d.s().detection_time(), ms(150));
  EXPECT_EQ(d.s().next_deadline() <= d.now() + ms(150), true);
  p.final = true;
  d.rx(p);
  EXPECT_EQ(d.s().detection_time(), ms(60));
  EXPECT_EQ(d.s().effective_required_min_rx(), ms(20));
}

TEST(SessionPoll, TMR10_LoweredTxAndRaisedRxApplyAtOnceButArePolled) {
  SessionDriver d(params(ms(100), ms(50)));
  auto p = patient(State::Down);
  d.bring_up(p);
  ASSERT_EQ(d.s().tx_interval(), ms(100));
  const std::uint64_t polls = d.s().counters().polls_started;
  d.set_params(params(ms(20), ms(50)));
  EXPECT_EQ(d.s().tx_interval(), ms(20));
  EXPECT_TRUE(d.s().poll_active());
  EXPECT_EQ(d.s().counters().polls_started, polls + 1);
  d.finish_poll(patient(State::Up));
  // rx raised: detection grows at once.
  SessionDriver e(params(ms(50), ms(50)));
  auto q = peer(State::Down);
  q.desired_min_tx_us = 10'000;
  e.bring_up(q);
  ASSERT_EQ(e.s().detection_time(), ms(150));
  e.set_params(params(ms(50), ms(400)));
  EXPECT_EQ(e.s().detection_time(), ms(1200));
  EXPECT_TRUE(e.s().poll_active());
}

TEST(SessionPoll, TMR11_PollAddsNoExtraPackets) {
  SessionDriver d = up_session();
  d.set_params(params(ms(100), ms(50)));  // starts a Poll, no packet now
  const std::size_t before = d.sent().size();
  d.run_for(Duration{1'000'000});
  std::size_t periodic = 0;
  for (std::size_t i = before; i < d.sent().size(); ++i) {
    EXPECT_TRUE(d.sent()[i].periodic) << "only periodic packets during the Poll";
    EXPECT_TRUE(d.sent()[i].pkt.poll);
    ++periodic;
  }
  // 1 s at 50 ms with jitter: 20..27 packets.
  EXPECT_GE(periodic, 20u);
  EXPECT_LE(periodic, 27u);
}

TEST(SessionPoll, TMR14_OnePollAtATimeChangesMerged) {
  SessionDriver d = up_session();
  const std::uint64_t polls = d.s().counters().polls_started;
  d.set_params(params(ms(100), ms(50)));
  d.clock().advance(ms(1));
  d.set_params(params(ms(200), ms(50)));
  d.clock().advance(ms(1));
  d.set_params(params(ms(200), ms(300)));
  EXPECT_EQ(d.s().counters().polls_started, polls + 1);
  EXPECT_TRUE(d.s().poll_queued());
  // The running Poll still advertises the first change only.
  EXPECT_EQ(d.s().current_packet().desired_min_tx_us, 100'000u);
  EXPECT_EQ(d.s().current_packet().required_min_rx_us, 50'000u);
  d.run_for(ms(120));  // P goes out on the periodic packets
  ASSERT_TRUE(d.sent().back().pkt.poll);
  auto f = patient(State::Up);
  f.final = true;
  d.rx(f);
  EXPECT_FALSE(d.s().poll_active());
  EXPECT_EQ(d.s().effective_desired_min_tx(), ms(100));
  // A late duplicate F must not start/end anything: the next Poll waits for a
  // packet without F ...
  d.rx(f);
  EXPECT_FALSE(d.s().poll_active());
  EXPECT_EQ(d.s().counters().polls_started, polls + 1);
  EXPECT_EQ(d.s().current_packet().desired_min_tx_us, 100'000u);
  // ... and for one tx interval after our last P.
  const TimePoint last_p = d.sent().back().at;
  d.clock().advance_to(last_p + ms(40));
  d.rx(patient(State::Up));
  EXPECT_FALSE(d.s().poll_active());
  EXPECT_EQ(d.s().current_packet().desired_min_tx_us, 100'000u);
  // Starts on the first periodic slot >= 100 ms (the new interval) after it.
  d.run_until(last_p + ms(200));
  EXPECT_TRUE(d.s().poll_active());
  EXPECT_GE(d.sent().back().at, last_p + ms(100));
  EXPECT_TRUE(d.sent().back().pkt.poll);
  EXPECT_EQ(d.s().counters().polls_started, polls + 2);
  // Merged: both queued changes in one Poll.
  EXPECT_EQ(d.s().current_packet().desired_min_tx_us, 200'000u);
  EXPECT_EQ(d.s().current_packet().required_min_rx_us, 300'000u);
  EXPECT_EQ(d.s().effective_desired_min_tx(), ms(100));   // TMR-06
  EXPECT_EQ(d.s().effective_required_min_rx(), ms(300));  // TMR-10
  d.rx(f);
  EXPECT_FALSE(d.s().poll_active());
  EXPECT_FALSE(d.s().poll_queued());
  EXPECT_EQ(d.s().effective_desired_min_tx(), ms(200));
}

TEST(SessionPoll, TMR05_ChangeWhileNotUpIsAdvertisedAtOnceAndPolled) {
  SessionDriver d(params(ms(50), ms(50)));
  d.rx(peer(State::AdminDown));  // Down, peer known
  d.set_params(params(ms(50), ms(80)));
  EXPECT_EQ(d.s().current_packet().required_min_rx_us, 80'000u);
  EXPECT_EQ(d.s().effective_required_min_rx(), ms(80));
  EXPECT_TRUE(d.s().poll_active());
  EXPECT_EQ(d.s().counters().polls_started, 1u);
}

// §6.8.3 is ambiguous about a change arriving while a Poll runs: folded into
// it, a Final for the running Poll would seem to confirm values it never
// carried. The second change waits until that Poll completes, then gets a
// Poll of its own.
TEST(SessionPoll, TMR05_SecondChangeWaitsForTheRunningPollToComplete) {
  SessionDriver d(params(ms(50), ms(50)));
  d.rx(peer(State::AdminDown));  // Down, peer known
  d.set_params(params(ms(50), ms(80)));
  ASSERT_TRUE(d.s().poll_active());
  d.set_params(params(ms(50), ms(90)));
  EXPECT_EQ(d.s().current_packet().required_min_rx_us, 80'000u);  // not folded in
  EXPECT_EQ(d.s().effective_required_min_rx(), ms(80));
  EXPECT_TRUE(d.s().poll_queued());
  auto f = peer(State::AdminDown);
  f.final = true;
  d.rx(f);  // completes the first Poll
  EXPECT_FALSE(d.s().poll_active());
  EXPECT_EQ(d.s().current_packet().required_min_rx_us, 90'000u);  // now advertised
  // Its own Poll starts once the TMR-14 guard allows (a packet without F).
  d.rx(peer(State::AdminDown));
  d.run_for(ms(1'100));
  EXPECT_TRUE(d.s().poll_active());
  EXPECT_EQ(d.s().counters().polls_started, 2u);
  EXPECT_TRUE(d.sent().back().pkt.poll);
  EXPECT_EQ(d.sent().back().pkt.required_min_rx_us, 90'000u);
}

// A Poll no one answers while the session is not Up times out (after a
// detection time, at least three intervals) so a queued change is not stuck
// behind it forever.
TEST(SessionPoll, UnansweredPollWhileNotUpTimesOutAndTheQueuedChangeGoesOut) {
  SessionDriver d(params(ms(50), ms(50)));
  d.rx(peer(State::AdminDown));  // the peer speaks once, then is silent
  d.set_params(params(ms(50), ms(80)));
  ASSERT_TRUE(d.s().poll_active());
  const TimePoint started = d.now();
  d.set_params(params(ms(50), ms(90)));
  d.run_for(ms(2'500));  // < 3 x 1 s: still the first Poll
  EXPECT_TRUE(d.s().poll_active());
  EXPECT_EQ(d.s().current_packet().required_min_rx_us, 80'000u);
  d.run_until(started + ms(5'000));
  EXPECT_EQ(d.s().current_packet().required_min_rx_us, 90'000u);
  EXPECT_EQ(d.s().counters().polls_started, 2u);
  EXPECT_TRUE(d.sent().back().pkt.poll);
}

TEST(SessionPoll, DE03_OurPollTowardsDemandPeerIsSentAtTxRate) {
  SessionDriver d = up_session();
  auto p = patient(State::Up);
  p.demand = true;
  d.rx(p);
  ASSERT_EQ(d.s().tx_interval(), Duration{0});
  d.set_params(params(ms(100), ms(50)));
  ASSERT_TRUE(d.s().poll_active());
  EXPECT_EQ(d.s().tx_interval(), ms(50));
  const std::size_t before = d.sent().size();
  d.run_for(ms(500));
  EXPECT_GE(d.sent().size(), before + 9);
  for (std::size_t i = before; i < d.sent().size(); ++i) EXPECT_TRUE(d.sent()[i].pkt.poll);
  p.final = true;
  d.rx(p);
  EXPECT_FALSE(d.s().poll_active());
  EXPECT_EQ(d.s().tx_interval(), Duration{0});
  const std::size_t after = d.sent().size();
  d.run_for(ms(500));
  EXPECT_EQ(d.sent().size(), after);
}

}  // namespace
}  // namespace beacon::core
