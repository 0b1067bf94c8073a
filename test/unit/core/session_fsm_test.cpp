// Session state machine: SM-01..SM-24, §6.8.6 receive steps 7-13/18/21,
// holds, reasons and counters. Timers: session_timers_test.cpp; Poll/Final:
// session_poll_test.cpp. All timing runs on a FakeClock.
//
// SM-16 (echo failure) and SM-17 (forwarding plane reset) are N/A: Echo is out
// of scope and a userspace daemon has no forwarding plane to reset; the table
// therefore has no such events (documented, not tested).
#include <gtest/gtest.h>

#include <array>
#include <string>

#include "beacon/core/session.hpp"
#include "session_driver.hpp"

namespace beacon::core {
namespace {

using test::kLocalDiscr;
using test::kPeerDiscr;
using test::peer;
using test::SessionDriver;
using wire::DropReason;
using wire::State;

constexpr std::array<State, 4> kStates = {State::AdminDown, State::Down, State::Init, State::Up};
constexpr std::array<FsmEvent, kFsmEventCount> kEvents = {FsmEvent::RxAdminDown, FsmEvent::RxDown,
                                                          FsmEvent::RxInit, FsmEvent::RxUp,
                                                          FsmEvent::DetectionTimeout};

SessionParams fast() {
  return SessionParams{Duration{50'000}, Duration{50'000}, 3, false};
}

TEST(SessionFsm, SM01_InitialVariables) {
  SessionDriver d(fast());
  const Session& s = d.s();
  EXPECT_EQ(s.state(), State::Down);
  EXPECT_EQ(s.remote_state(), State::Down);
  EXPECT_EQ(s.local_diag(), 0);
  EXPECT_EQ(s.local_discr(), kLocalDiscr);
  EXPECT_EQ(s.remote_discr(), 0u);
  EXPECT_EQ(s.remote_min_rx(), Duration{1});
  EXPECT_FALSE(s.remote_demand());
  EXPECT_FALSE(s.poll_active());
  EXPECT_EQ(s.hold(), Hold::None);
  EXPECT_EQ(s.detection_time(), Duration{0});
  EXPECT_FALSE(s.last_rx().has_value());
  // TMR-04 / CI-04: exactly 1 s while not Up, configured value not yet used.
  const wire::ControlPacket p = s.current_packet();
  EXPECT_EQ(p.desired_min_tx_us, 1'000'000u);
  EXPECT_EQ(p.required_min_rx_us, 50'000u);
  EXPECT_EQ(s.tx_interval(), kOneSecond);
  // Active: the first packet is due at once.
  EXPECT_EQ(s.next_deadline(), d.now());
  const SessionCounters& c = s.counters();
  EXPECT_EQ(c.rx_packets + c.tx_packets + c.rx_dropped + c.state_changes + c.up_count +
                c.down_count + c.polls_started + c.finals_sent + c.detect_timeouts,
            0u);
}

TEST(SessionFsm, PKT01_to_PKT08_TransmitEncoding) {
  SessionDriver d(fast());
  d.run_until(d.now());
  ASSERT_EQ(d.sent().size(), 1u);
  const wire::ControlPacket& p = d.sent()[0].pkt;
  EXPECT_EQ(p.version, 1);          // PKT-01
  EXPECT_EQ(p.state, State::Down);  // PKT-01
  EXPECT_EQ(p.diag, 0);
  EXPECT_FALSE(p.multipoint);                  // PKT-02
  EXPECT_FALSE(p.auth_present);                // PKT-04
  EXPECT_FALSE(p.demand);                      // PKT-05 / DE-01: we never set D
  EXPECT_FALSE(p.control_plane_independent);   // PKT-09
  EXPECT_EQ(p.my_discriminator, kLocalDiscr);  // PKT-06
  EXPECT_EQ(p.your_discriminator, 0u);         // PKT-06: unknown yet
  EXPECT_EQ(p.required_min_echo_rx_us, 0u);    // PKT-07, DE-12
  EXPECT_EQ(p.detect_mult, 3);                 // PKT-08
  EXPECT_TRUE(d.sent()[0].periodic);
}

// ------------------------------------------------------------------------
// Table completeness (SM-03..SM-20): every (state, event) pair, once against
// an expected table written here from RFC 5880 §6.8.6 / §6.8.4, once against a
// live Session driven into that state.

struct Expect {
  State next;
  int diag;  // -1 unchanged
  const char* id;
};

Expect expected(State s, FsmEvent e) {
  constexpr Expect kKeep{State::AdminDown, -1, "SM-20"};
  switch (s) {
    case State::AdminDown:
      return kKeep;
    case State::Down:
      switch (e) {
        case FsmEvent::RxAdminDown:
          return {State::Down, -1, "SM-03"};
        case FsmEvent::RxDown:
          return {State::Init, -1, "SM-04"};
        case FsmEvent::RxInit:
          return {State::Up, 0, "SM-05"};  // Up clears the diag (SM-24 note)
        case FsmEvent::RxUp:
          return {State::Down, -1, "SM-06"};
        case FsmEvent::DetectionTimeout:
          return {State::Down, -1, "SM-07"};
      }
      break;
    case State::Init:
      switch (e) {
        case FsmEvent::RxAdminDown:
          return {State::Down, 3, "SM-08"};
        case FsmEvent::RxDown:
          return {State::Init, -1, "SM-09"};
        case FsmEvent::RxInit:
        case FsmEvent::RxUp:
          return {State::Up, 0, "SM-10"};
        case FsmEvent::DetectionTimeout:
          return {State::Down, 1, "SM-11"};
      }
      break;
    case State::Up:
      switch (e) {
        case FsmEvent::RxAdminDown:
          return {State::Down, 3, "SM-12"};
        case FsmEvent::RxDown:
          return {State::Down, 3, "SM-13"};
        case FsmEvent::RxInit:
        case FsmEvent::RxUp:
          return {State::Up, -1, "SM-14"};
        case FsmEvent::DetectionTimeout:
          return {State::Down, 1, "SM-15"};
      }
      break;
  }
  return {State::Down, -2, "?"};
}

TEST(SessionFsm, TableCompleteness_EveryStateEventPair) {
  int pairs = 0;
  for (State s : kStates) {
    for (FsmEvent e : kEvents) {
      const FsmTransition t = fsm_transition(s, e);
      const Expect x = expected(s, e);
      SCOPED_TRACE(std::string(x.id));
      EXPECT_EQ(t.next, x.next);
      EXPECT_EQ(t.diag, x.diag);
      EXPECT_FALSE(t.rfc.empty());
      EXPECT_NE(t.rfc.find(x.id), std::string_view::npos) << t.rfc;
      // A reason exactly when the state changes (SM-25 logging).
      EXPECT_EQ(t.reason.empty(), t.next == s);
      ++pairs;
    }
  }
  EXPECT_EQ(pairs, 4 * 5);
}

// Drives a fresh session into `s`, having heard the peer (so the detection
// timer has something to count).
void reach(SessionDriver& d, State s) {
  switch (s) {
    case State::AdminDown:
      d.rx(peer(State::Down));
      d.hold(Hold::AdminDown);
      break;
    case State::Down:
      d.rx(peer(State::AdminDown));
      break;
    case State::Init:
      d.rx(peer(State::Down));
      break;
    case State::Up:
      d.bring_up();
      break;
  }
  ASSERT_EQ(d.s().state(), s);
}

Effects apply(SessionDriver& d, FsmEvent e) {
  switch (e) {
    case FsmEvent::RxAdminDown:
      return d.rx(peer(State::AdminDown));
    case FsmEvent::RxDown:
      return d.rx(peer(State::Down));
    case FsmEvent::RxInit:
      return d.rx(peer(State::Init));
    case FsmEvent::RxUp:
      return d.rx(peer(State::Up));
    case FsmEvent::DetectionTimeout: {
      const std::size_t before = d.sent().size();
      const std::size_t changes = d.changes().size();
      const TimePoint at = *d.s().last_rx() + d.s().detection_time();
      EXPECT_GT(d.s().detection_time(), Duration{0});
      d.run_until(at);
      Effects fx;
      for (std::size_t i = before; i < d.sent().size(); ++i)
        if (d.sent()[i].at == at) fx.send = d.sent()[i].pkt;
      if (d.changes().size() > changes) fx.change = d.changes().back();
      return fx;
    }
  }
  return {};
}

struct PairCase {
  State state;
  FsmEvent event;
};

class SessionFsmLive : public ::testing::TestWithParam<PairCase> {};

TEST_P(SessionFsmLive, TransitionAndDiagOfNextPacket) {
  const auto [s, e] = GetParam();
  const Expect x = expected(s, e);
  SessionDriver d(fast());
  reach(d, s);
  const std::uint8_t diag_before = d.s().local_diag();
  const Effects fx = apply(d, e);
  EXPECT_EQ(d.s().state(), x.next);
  const std::uint8_t want_diag = x.diag < 0 ? diag_before : static_cast<std::uint8_t>(x.diag);
  EXPECT_EQ(d.s().local_diag(), want_diag);
  if (x.next != s) {
    // SM-21: the new state goes out at once, in this very call.
    ASSERT_TRUE(fx.send.has_value());
    EXPECT_EQ(fx.send->state, x.next);
    EXPECT_EQ(fx.send->diag, want_diag);
    ASSERT_TRUE(fx.change.has_value());
    EXPECT_EQ(fx.change->old_state, s);
    EXPECT_EQ(fx.change->new_state, x.next);
    EXPECT_EQ(fx.change->local_diag, want_diag);
    EXPECT_FALSE(fx.change->reason.empty());
  } else {
    EXPECT_FALSE(fx.change.has_value());
  }
  const wire::ControlPacket next = d.s().current_packet();
  EXPECT_EQ(next.state, x.next);
  EXPECT_EQ(next.diag, want_diag);
}

std::string pair_name(const ::testing::TestParamInfo<PairCase>& info) {
  static constexpr const char* kS[] = {"AdminDown", "Down", "Init", "Up"};
  static constexpr const char* kE[] = {"RxAdminDown", "RxDown", "RxInit", "RxUp", "DetectTimeout"};
  std::string id = expected(info.param.state, info.param.event).id;
  id.erase(id.find('-'), 1);
  return id + "_" + kS[static_cast<int>(info.param.state)] + "_" +
         kE[static_cast<int>(info.param.event)];
}

std::vector<PairCase> all_pairs() {
  std::vector<PairCase> v;
  for (State s : kStates)
    for (FsmEvent e : kEvents) v.push_back({s, e});
  return v;
}

INSTANTIATE_TEST_SUITE_P(AllPairs, SessionFsmLive, ::testing::ValuesIn(all_pairs()), pair_name);

// ------------------------------------------------------------------------
// Named transitions with extra checks.

TEST(SessionFsm, SM06_DownRxUpNeverJumpsToUp) {
  SessionDriver d(fast());
  for (int i = 0; i < 5; ++i) d.rx(peer(State::Up));
  EXPECT_EQ(d.s().state(), State::Down);
  EXPECT_EQ(d.s().counters().state_changes, 0u);
}

TEST(SessionFsm, SM05_SM10_ThreeWayHandshakeFromBothSides) {
  SessionDriver a(fast());
  a.rx(peer(State::Down));
  EXPECT_EQ(a.s().state(), State::Init);
  a.rx(peer(State::Up));
  EXPECT_EQ(a.s().state(), State::Up);
  SessionDriver b(fast());
  b.rx(peer(State::Init));
  EXPECT_EQ(b.s().state(), State::Up);
  EXPECT_EQ(b.changes().back().reason, "peer signalled Init");
  EXPECT_EQ(b.s().counters().up_count, 1u);
}

TEST(SessionFsm, SM13_ADM06_PeerAdminDownWhileUpThenDown) {
  SessionDriver d(fast());
  d.bring_up();
  Effects fx = d.rx(peer(State::AdminDown));
  ASSERT_TRUE(fx.send);
  EXPECT_EQ(fx.send->state, State::Down);
  EXPECT_EQ(fx.send->diag, 3);
  EXPECT_EQ(fx.change->reason, "peer signalled AdminDown");
  EXPECT_EQ(fx.change->remote_state, State::AdminDown);  // ADM-07: cause visible
  // More AdminDown: stay Down, diag unchanged, nothing sent at once.
  fx = d.rx(peer(State::AdminDown));
  EXPECT_EQ(d.s().state(), State::Down);
  EXPECT_EQ(d.s().local_diag(), 3);
  EXPECT_FALSE(fx.change);
  // Peer Down -> Init.
  d.rx(peer(State::Down));
  EXPECT_EQ(d.s().state(), State::Init);
  EXPECT_EQ(d.s().counters().down_count, 1u);
}

TEST(SessionFsm, SM13_PeerSignalledDownReason) {
  SessionDriver d(fast());
  d.bring_up();
  const Effects fx = d.rx(peer(State::Down));
  ASSERT_TRUE(fx.change);
  EXPECT_EQ(fx.change->reason, "peer signalled Down");
  EXPECT_EQ(fx.change->old_state, State::Up);
  EXPECT_EQ(fx.change->new_state, State::Down);
}

TEST(SessionFsm, SM24_PeerUpWithNonzeroDiagKeepsUp_LocalDiagClearedOnUp) {
  SessionDriver d(fast());
  d.bring_up();
  auto p = peer(State::Up);
  p.diag = 1;
  d.rx(p);
  p.diag = 31;  // PKT-33: unknown diag is no discard reason
  d.rx(p);
  EXPECT_EQ(d.s().state(), State::Up);
  EXPECT_EQ(d.s().remote_diag(), 31);
  // Time out (diag 1), come back: Up clears LocalDiag (RFC 5880 leaves it;
  // peers display a stale one as the reason a healthy session failed).
  d.run_for(d.s().detection_time());
  ASSERT_EQ(d.s().state(), State::Down);
  EXPECT_EQ(d.s().local_diag(), 1);
  d.rx(peer(State::Init));
  EXPECT_EQ(d.s().state(), State::Up);
  EXPECT_EQ(d.s().current_packet().diag, 0);
}

// ------------------------------------------------------------------------
// §6.8.6 discard steps handled by the session (PKT-11: no side effects).

void expect_untouched(const Session& before, const Session& after) {
  EXPECT_EQ(after.state(), before.state());
  EXPECT_EQ(after.remote_discr(), before.remote_discr());
  EXPECT_EQ(after.remote_min_rx(), before.remote_min_rx());
  EXPECT_EQ(after.current_packet(), before.current_packet());
  EXPECT_EQ(after.next_deadline(), before.next_deadline());
  EXPECT_EQ(after.last_rx(), before.last_rx());
  EXPECT_EQ(after.counters().rx_packets, before.counters().rx_packets);
  EXPECT_EQ(after.counters().rx_dropped, before.counters().rx_dropped + 1);
}

TEST(SessionFsm, PKT19_Step8_ZeroYourDiscWithInitOrUpDropped) {
  for (State st : {State::Init, State::Up}) {
    SessionDriver d(fast());
    const Session before = d.s();
    auto p = peer(st);
    p.your_discr = 0;
    const Effects fx = d.rx(p);
    EXPECT_EQ(fx.drop, DropReason::ZeroYourDiscInitUp);
    EXPECT_FALSE(fx.send);
    expect_untouched(before, d.s());
  }
  // YD 0 with Down / AdminDown is legal (step 9 path).
  SessionDriver d(fast());
  auto p = peer(State::Down);
  p.your_discr = 0;
  EXPECT_EQ(d.rx(p).drop, DropReason::None);
  EXPECT_EQ(d.s().state(), State::Init);
}

TEST(SessionFsm, PKT18_Step7_WrongYourDiscriminatorDropped) {
  SessionDriver d(fast());
  d.bring_up();
  const Session before = d.s();
  auto p = peer(State::Down);
  p.your_discr = kLocalDiscr + 1;
  EXPECT_EQ(d.rx(p).drop, DropReason::UnknownYourDiscriminator);
  expect_untouched(before, d.s());
}

TEST(SessionFsm, PKT21_Step10_AuthPresentButNotConfiguredDropped) {
  SessionDriver d(fast());
  d.bring_up();
  const Session before = d.s();
  auto pkt = peer(State::Down).build();
  pkt.auth_present = true;
  pkt.auth.type = wire::AuthType::KeyedSha1;
  const Effects fx = d.rx(pkt);
  EXPECT_EQ(fx.drop, DropReason::AuthPresentNotConfigured);
  EXPECT_EQ(d.s().state(), State::Up);
  expect_untouched(before, d.s());
}

TEST(SessionFsm, PKT30_DroppedPacketsDoNotRestartDetection) {
  SessionDriver d(fast());
  d.bring_up();
  const TimePoint expiry = *d.s().last_rx() + d.s().detection_time();
  auto pkt = peer(State::Up).build();
  pkt.auth_present = true;
  // Peer keeps sending packets the session must drop.
  while (d.now() + Duration{10'000} < expiry) {
    d.run_for(Duration{10'000});
    EXPECT_EQ(d.rx(pkt).drop, DropReason::AuthPresentNotConfigured);
  }
  d.run_until(expiry);
  EXPECT_EQ(d.s().state(), State::Down);
  EXPECT_EQ(d.s().local_diag(), 1);
  EXPECT_EQ(d.changes().back().reason, "detection time expired");
  EXPECT_EQ(d.s().counters().detect_timeouts, 1u);
}

TEST(SessionFsm, SM21_DetectionExpiryAnnouncesDownAtOnce) {
  SessionDriver d(fast());
  d.bring_up();
  const TimePoint expiry = *d.s().last_rx() + d.s().detection_time();
  d.run_until(expiry);
  ASSERT_EQ(d.s().state(), State::Down);
  ASSERT_FALSE(d.sent().empty());
  const auto& last = d.sent().back();
  EXPECT_EQ(last.at, expiry);  // not at the next (slow) periodic slot
  EXPECT_EQ(last.pkt.state, State::Down);
  EXPECT_EQ(last.pkt.diag, 1);
}

TEST(SessionFsm, PKT24_RemoteVariablesStoredAndReflected) {
  SessionDriver d(fast());
  auto p = peer(State::Down);
  p.your_discr = 0;
  p.demand = true;  // PKT-33: D while not Up is no discard reason
  p.desired_min_tx_us = 123'000;
  p.required_min_rx_us = 456'000;
  p.detect_mult = 7;
  p.diag = 5;
  d.rx(p);
  const Session& s = d.s();
  EXPECT_EQ(s.remote_discr(), kPeerDiscr);
  EXPECT_EQ(s.remote_state(), State::Down);
  EXPECT_TRUE(s.remote_demand());
  EXPECT_EQ(s.remote_min_rx(), Duration{456'000});
  EXPECT_EQ(s.remote_desired_min_tx(), Duration{123'000});
  EXPECT_EQ(s.remote_detect_mult(), 7);
  EXPECT_EQ(s.remote_diag(), 5);
  EXPECT_EQ(s.last_rx(), d.now());
  EXPECT_EQ(s.current_packet().your_discriminator, kPeerDiscr);  // PKT-06
}

TEST(SessionFsm, DIS03_PeerChangesDiscriminatorWhileUpNoFlap) {
  SessionDriver d(fast());
  d.bring_up();
  auto p = peer(State::Up);
  p.my_discr = 0xABCD;
  const Effects fx = d.rx(p);
  EXPECT_FALSE(fx.change);
  EXPECT_EQ(d.s().state(), State::Up);
  EXPECT_EQ(d.s().current_packet().your_discriminator, 0xABCDu);
}

// ------------------------------------------------------------------------
// AdminDown (SM-18..20, ADM-01/03/04/05).

TEST(SessionFsm, SM18_ADM01_AdminDisableFromEveryState) {
  for (State s : {State::Down, State::Init, State::Up}) {
    SessionDriver d(fast());
    reach(d, s);
    const Effects fx = d.hold(Hold::AdminDown);
    EXPECT_EQ(d.s().state(), State::AdminDown);
    EXPECT_EQ(d.s().hold(), Hold::AdminDown);
    ASSERT_TRUE(fx.send) << "SM-21: AdminDown goes out at once";
    EXPECT_EQ(fx.send->state, State::AdminDown);
    EXPECT_EQ(fx.send->diag, 7);
    EXPECT_EQ(fx.send->desired_min_tx_us, 1'000'000u);  // ADM-03 / TMR-04
    ASSERT_TRUE(fx.change);
    EXPECT_EQ(fx.change->new_state, State::AdminDown);
    EXPECT_EQ(fx.change->reason, "administratively down");
  }
  // Diag 5 (path down) when given.
  SessionDriver d(fast());
  d.bring_up();
  EXPECT_EQ(d.hold(Hold::AdminDown, 5).send->diag, 5);
  EXPECT_EQ(d.s().counters().down_count, 1u);
}

TEST(SessionFsm, SM20_ADM04_AdminDownIgnoresStateButStoresRemoteVars) {
  SessionDriver d(fast());
  d.hold(Hold::AdminDown);
  for (State st : {State::Down, State::Init, State::Up, State::AdminDown}) {
    auto p = peer(st);
    p.required_min_rx_us = 300'000;
    p.my_discr = 0x77;
    const Effects fx = d.rx(p);
    EXPECT_EQ(fx.drop, DropReason::None);
    EXPECT_FALSE(fx.change);
    EXPECT_FALSE(fx.send);
    EXPECT_EQ(d.s().state(), State::AdminDown);
    EXPECT_EQ(d.s().remote_state(), st);
    EXPECT_EQ(d.s().remote_discr(), 0x77u);
    EXPECT_EQ(d.s().remote_min_rx(), Duration{300'000});
  }
}

TEST(SessionFsm, ADM05_PollInAdminDownIsAnsweredWithFinal) {
  SessionDriver d(fast());
  d.hold(Hold::AdminDown);
  auto p = peer(State::Up);
  p.poll = true;
  const Effects fx = d.rx(p);
  ASSERT_TRUE(fx.send);
  EXPECT_TRUE(fx.send->final);
  EXPECT_FALSE(fx.send->poll);
  EXPECT_EQ(fx.send->state, State::AdminDown);
  EXPECT_EQ(d.s().state(), State::AdminDown);
}

TEST(SessionFsm, SM19_AdminEnableGoesDownThenHandshake) {
  SessionDriver d(fast());
  d.bring_up();
  d.hold(Hold::AdminDown);
  const Effects fx = d.hold(Hold::None);
  EXPECT_EQ(d.s().state(), State::Down);
  EXPECT_EQ(d.s().local_diag(), 7);  // unchanged
  ASSERT_TRUE(fx.send);
  EXPECT_EQ(fx.send->state, State::Down);
  ASSERT_TRUE(fx.change);
  EXPECT_EQ(fx.change->reason, "hold released");
  d.rx(peer(State::Down));
  EXPECT_EQ(d.s().state(), State::Init);
  d.rx(peer(State::Up));
  EXPECT_EQ(d.s().state(), State::Up);
}

// ------------------------------------------------------------------------
// Hold Down (SM-22) and SM-21.

TEST(SessionFsm, SM22_HoldDownFromUpSendsDownAndRefusesToAdvance) {
  SessionDriver d(fast());
  d.bring_up();
  Effects fx = d.hold(Hold::Down, 5);
  EXPECT_EQ(d.s().state(), State::Down);
  ASSERT_TRUE(fx.send);
  EXPECT_EQ(fx.send->state, State::Down);
  EXPECT_EQ(fx.send->diag, 5);
  EXPECT_EQ(fx.change->reason, "local hold");
  // The peer answers Down, then Init: we stay Down (no Init, no Up).
  for (State st : {State::Down, State::Init, State::Down, State::Init}) {
    fx = d.rx(peer(st));
    EXPECT_FALSE(fx.change);
    EXPECT_EQ(d.s().state(), State::Down);
  }
  // Periodic packets keep asserting Down/5.
  const TimePoint t0 = d.now();
  d.rx(peer(State::Down));
  d.run_for(Duration{5'000'000});
  int periodic = 0;
  for (const auto& p : d.sent())
    if (p.at > t0 && p.periodic) {
      ++periodic;
      EXPECT_EQ(p.pkt.state, State::Down);
      EXPECT_EQ(p.pkt.diag, 5);
      EXPECT_EQ(p.pkt.desired_min_tx_us, 1'000'000u);
    }
  EXPECT_GE(periodic, 4);
}

TEST(SessionFsm, SM22_HoldDownFromInitAndFromDownChangesDiag) {
  SessionDriver d(fast());
  reach(d, State::Init);
  EXPECT_EQ(d.hold(Hold::Down, 5).send->state, State::Down);
  SessionDriver e(fast());
  Effects fx = e.hold(Hold::Down, 6);
  ASSERT_TRUE(fx.send) << "diag/hold change goes out at once (SM-21)";
  EXPECT_EQ(fx.send->diag, 6);
  EXPECT_FALSE(fx.change);  // state did not change
  // Same hold again: nothing changed, nothing sent.
  fx = e.hold(Hold::Down, 6);
  EXPECT_FALSE(fx.send);
}

TEST(SessionFsm, SM22_HoldReleaseResumesNormalHandshake) {
  SessionDriver d(fast());
  d.bring_up();
  d.hold(Hold::Down, 5);
  d.rx(peer(State::Down));
  EXPECT_EQ(d.s().state(), State::Down);
  const Effects fx = d.hold(Hold::None);
  ASSERT_TRUE(fx.send);  // hold change -> packet at once
  EXPECT_EQ(d.s().hold(), Hold::None);
  EXPECT_EQ(d.s().state(), State::Down);
  d.rx(peer(State::Down));
  EXPECT_EQ(d.s().state(), State::Init);
  d.rx(peer(State::Init));
  EXPECT_EQ(d.s().state(), State::Up);
  // Up clears the diag (a deliberate departure from RFC 5880, which leaves it
  // stale: peers display it, e.g. FRR's "path down" on a healthy session).
  EXPECT_EQ(d.s().current_packet().diag, 0);
  EXPECT_EQ(d.s().local_diag(), 0);
}

TEST(SessionFsm, SM24_UpClearsTheDiagOfTheLastFailure) {
  SessionDriver d(fast());
  d.bring_up();
  d.run_for(Duration{2'000'000});  // peer silent: Up -> Down, diag 1
  ASSERT_EQ(d.s().state(), State::Down);
  ASSERT_EQ(d.s().local_diag(), 1);
  EXPECT_EQ(d.s().current_packet().diag, 1);  // Down packets say why
  d.rx(peer(State::Down));
  EXPECT_EQ(d.s().state(), State::Init);
  EXPECT_EQ(d.s().local_diag(), 1);  // not Up yet
  d.rx(peer(State::Up));
  ASSERT_EQ(d.s().state(), State::Up);
  EXPECT_EQ(d.s().local_diag(), 0);
  ASSERT_FALSE(d.changes().empty());
  EXPECT_EQ(d.changes().back().local_diag, 0);
  // And a peer's Up with a nonzero diag is never rejected.
  auto p = peer(State::Up);
  p.diag = 1;
  d.rx(p);
  EXPECT_EQ(d.s().state(), State::Up);
}

TEST(SessionFsm, SM22_DetectionTimeoutWhileHeldIsHarmless) {
  SessionDriver d(fast());
  d.bring_up();
  d.hold(Hold::Down, 5);
  d.run_for(Duration{30'000'000});
  EXPECT_EQ(d.s().state(), State::Down);
  EXPECT_EQ(d.s().local_diag(), 5);
  EXPECT_EQ(d.s().hold(), Hold::Down);
  EXPECT_EQ(d.s().remote_discr(), 0u);  // DIS-05 still applies
}

TEST(SessionFsm, SM22_HoldDownFromAdminDown) {
  SessionDriver d(fast());
  d.hold(Hold::AdminDown);
  const Effects fx = d.hold(Hold::Down, 5);
  EXPECT_EQ(d.s().state(), State::Down);
  EXPECT_EQ(fx.send->diag, 5);
  d.rx(peer(State::Down));
  EXPECT_EQ(d.s().state(), State::Down);
}

TEST(SessionFsm, SM21_EveryStateChangeSendsAtOnceNotAtNextSlot) {
  SessionDriver d(fast());
  d.run_until(d.now());  // first periodic packet
  const TimePoint next_slot = d.s().next_deadline();
  ASSERT_GT(next_slot, d.now());
  d.clock().advance(Duration{100});
  for (State st : {State::Down, State::Up}) {  // Down -> Init -> Up
    const Effects fx = d.rx(peer(st));
    ASSERT_TRUE(fx.change);
    ASSERT_TRUE(fx.send);
    EXPECT_EQ(fx.send->state, fx.change->new_state);
  }
  const Effects fx = d.rx(peer(State::Down));  // Up -> Down
  ASSERT_TRUE(fx.send);
  EXPECT_EQ(fx.send->state, State::Down);
  EXPECT_EQ(fx.send->diag, 3);
}

TEST(SessionFsm, HoldNames) {
  EXPECT_EQ(hold_name(Hold::None), "none");
  EXPECT_EQ(hold_name(Hold::Down), "down");
  EXPECT_EQ(hold_name(Hold::AdminDown), "admin-down");
}

TEST(SessionFsm, CountersFollowActivity) {
  SessionDriver d(fast());
  d.run_until(d.now());
  d.bring_up();
  auto bad = peer(State::Up).build();
  bad.auth_present = true;
  d.rx(bad);
  auto p = peer(State::Up);
  p.poll = true;
  d.rx(p);
  d.rx(peer(State::Down));
  const SessionCounters& c = d.s().counters();
  EXPECT_EQ(c.rx_dropped, 1u);
  EXPECT_EQ(c.rx_packets, 7u);  // Down, Up, F, plain, plain, P, Down
  EXPECT_EQ(c.tx_packets, d.sent().size());
  EXPECT_EQ(c.state_changes, 3u);  // Init, Up, Down
  EXPECT_EQ(c.up_count, 1u);
  EXPECT_EQ(c.down_count, 1u);
  EXPECT_GE(c.polls_started, 1u);
  EXPECT_EQ(c.finals_sent, 1u);
}

}  // namespace
}  // namespace beacon::core
