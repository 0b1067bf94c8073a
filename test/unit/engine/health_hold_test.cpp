// Engine side of the health beacon (issue 3): hold reasons, the configured
// signals per session, the start-up hold of health-managed groups (item 5)
// and the fail-safe against a stalled ops loop (item 4).
//
// Same style as engine_test.cpp: a private network namespace, the test plays
// the peer over loopback with raw UDP sockets. Fail-safe timeouts are small
// (200 ms); assertions on time are generous and only separate "promptly" from
// "never".
#include <gtest/gtest.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "../../../src/engine/holds_impl.hpp"
#include "beacon/engine/engine.hpp"
#include "netns_peer.hpp"

namespace beacon::engine {
namespace {

using namespace std::chrono_literals;
using core::wire::State;
using test::bfd_packet;
using test::Received;
using test::UdpPeer;

constexpr std::uint16_t kSh = core::wire::kSingleHopPort;
constexpr std::uint32_t kPeerDiscr = 0x5eed0002;
constexpr const char* kStartupReason = "waiting for first health verdict";

config::SessionSpec session_spec(const char* peer, const char* group) {
  config::SessionSpec s;
  s.peer = boost::asio::ip::make_address(peer);
  s.local = boost::asio::ip::make_address("127.0.0.1");
  s.group = group;
  // 1 s timers: a periodic packet is ~0.75-1 s away.
  s.params = core::SessionParams{core::Duration{1'000'000}, core::Duration{1'000'000}, 3, false};
  return s;
}

config::GroupSpec group_spec(const char* name, std::vector<std::string> checks,
                             std::uint8_t diag = 5) {
  config::GroupSpec g;
  g.name = name;
  g.checks = std::move(checks);
  g.diag = diag;
  return g;
}

Selector group_sel(const char* g) {
  return Selector{Selector::Kind::Group, g};
}

// Calls Engine::heartbeat() every 20 ms from its own thread while enabled.
class Heart {
 public:
  explicit Heart(Engine& e) : engine_(e), thread_([this] { loop(); }) {}
  ~Heart() {
    quit_ = true;
    thread_.join();
  }
  void beat(bool on) { on_ = on; }

 private:
  void loop() {
    // Bounded: at most ~60 s of beating even if the test never stops it.
    for (int i = 0; i < 3000 && !quit_; ++i) {
      if (on_) engine_.heartbeat();
      std::this_thread::sleep_for(20ms);
    }
  }
  Engine& engine_;
  std::atomic<bool> on_{true};
  std::atomic<bool> quit_{false};
  std::thread thread_;
};

class HealthHoldTest : public test::EngineFixture {
 protected:
  void SetUp() override {
    if (!test::enter_private_netns()) GTEST_SKIP() << "needs root to unshare(CLONE_NEWNET)";
    init_log("health-hold-test", "%l %v");
    cfg_.health.failsafe_timeout = core::Duration{30'000'000};  // out of the way by default
  }

  // Three-way handshake from the peer's side (SM-04, SM-05, SM-10); returns
  // the engine's discriminator or 0.
  std::uint32_t bring_up(UdpPeer& rx, UdpPeer& tx, const std::string& peer) {
    rx.drain();
    tx.send("127.0.0.1", kSh, bfd_packet(State::Down, kPeerDiscr, 0));
    auto init = rx.recv_until([](const Received& r) { return r.pkt.state == State::Init; }, 2000ms);
    if (!init || init->pkt.your_discriminator != kPeerDiscr) return 0;
    const std::uint32_t discr = init->pkt.my_discriminator;
    tx.send("127.0.0.1", kSh, bfd_packet(State::Up, kPeerDiscr, discr));
    if (!wait_session(peer, [](const SessionSnapshot& s) { return s.state == State::Up; })) {
      return 0;
    }
    return discr;
  }

  int count_lines(const std::string& needle) {
    int n = 0;
    for (const auto& l : sink_->last_formatted()) n += l.find(needle) != std::string::npos;
    return n;
  }
};

// Issue 3 item 5, SM-21/SM-22: a health-managed group starts held Down with
// the group's diag; the peer's Down/Init is not answered with Init/Up until
// the first verdict releases it. Groups without checks are not held.
TEST_F(HealthHoldTest, StartupHoldKeepsSessionDownUntilFirstVerdict) {
  cfg_.sessions.push_back(session_spec("127.0.0.2", "web"));
  cfg_.sessions.push_back(session_spec("127.0.0.3", "plain"));     // no [[group]]
  cfg_.sessions.push_back(session_spec("127.0.0.4", "nochecks"));  // [[group]] without checks
  cfg_.groups.push_back(group_spec("web", {"haproxy", "maint"}, 6));
  cfg_.groups.back().maintenance_signal = core::Hold::AdminDown;
  cfg_.groups.push_back(group_spec("nochecks", {}));
  UdpPeer rx("127.0.0.2", kSh);
  UdpPeer tx("127.0.0.2", 50001);
  ASSERT_TRUE(rx.bound() && tx.bound());
  start();

  // The held session speaks first with Down and the group's diag.
  auto first = rx.recv(2500ms);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->pkt.state, State::Down);
  EXPECT_EQ(first->pkt.diag, 6);

  auto s = find("127.0.0.2");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->hold, core::Hold::Down);
  EXPECT_EQ(s->hold_source, HoldSource::Health);
  EXPECT_EQ(s->hold_reason, kStartupReason);
  EXPECT_EQ(s->local_diag, 6);
  EXPECT_EQ(s->unhealthy_signal, "down");
  EXPECT_EQ(s->maintenance_signal, "admin-down");
  for (const char* other : {"127.0.0.3", "127.0.0.4"}) {
    auto o = find(other);
    ASSERT_TRUE(o);
    EXPECT_EQ(o->hold, core::Hold::None) << other;
    EXPECT_EQ(o->hold_reason, "") << other;
    EXPECT_EQ(o->unhealthy_signal, "") << other;
    EXPECT_EQ(o->maintenance_signal, "") << other;
  }

  // The peer tries: Down (would move us to Init), then Init (would move us
  // to Up). Held: we stay Down and never send Init/Up.
  rx.drain();
  tx.send("127.0.0.1", kSh, bfd_packet(State::Down, kPeerDiscr, 0));
  auto init = rx.recv_until([](const Received& r) { return r.pkt.state != State::Down; }, 300ms);
  EXPECT_FALSE(init);
  tx.send("127.0.0.1", kSh, bfd_packet(State::Init, kPeerDiscr, s->local_discr));
  auto up = rx.recv_until([](const Received& r) { return r.pkt.state != State::Down; }, 300ms);
  EXPECT_FALSE(up);
  EXPECT_EQ(find("127.0.0.2")->state, State::Down);

  // The first verdict (healthy) releases it; the handshake completes.
  auto r = engine_->set_hold(HoldSource::Health, group_sel("web"), core::Hold::None, 0, "healthy");
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.matched, 1u);
  s = find("127.0.0.2");
  EXPECT_EQ(s->hold, core::Hold::None);
  EXPECT_EQ(s->hold_reason, "");
  EXPECT_NE(bring_up(rx, tx, "127.0.0.2"), 0u);
}

// Issue 3 item 3: the reason of the winning rule is visible per session; a
// health verdict with a reason goes out at once (SM-21); the 4-argument
// set_hold still works and gives an empty reason.
TEST_F(HealthHoldTest, HoldReasonsVisiblePerSession) {
  cfg_.sessions.push_back(session_spec("127.0.0.2", "web"));
  cfg_.groups.push_back(group_spec("web", {"haproxy"}));
  UdpPeer rx("127.0.0.2", kSh);
  UdpPeer tx("127.0.0.2", 50001);
  start();
  ASSERT_EQ(engine_->set_hold(HoldSource::Health, group_sel("web"), core::Hold::None, 0).error, "");
  ASSERT_NE(bring_up(rx, tx, "127.0.0.2"), 0u);

  rx.drain();
  const auto t0 = std::chrono::steady_clock::now();
  auto r = engine_->set_hold(HoldSource::Health, group_sel("web"), core::Hold::Down, 5,
                             "check haproxy: HTTP 503");
  EXPECT_EQ(r.error, "");
  auto down = rx.recv_until([](const Received& x) { return x.pkt.state == State::Down; }, 2000ms);
  ASSERT_TRUE(down);
  EXPECT_EQ(down->pkt.diag, 5);
  EXPECT_LT(down->at - t0, 300ms);
  auto s = find("127.0.0.2");
  EXPECT_EQ(s->hold_source, HoldSource::Health);
  EXPECT_EQ(s->hold_reason, "check haproxy: HTTP 503");

  // A new verdict with the same hold and diag only changes the reason.
  engine_->set_hold(HoldSource::Health, group_sel("web"), core::Hold::Down, 5,
                    "check haproxy: timeout");
  EXPECT_EQ(find("127.0.0.2")->hold_reason, "check haproxy: timeout");

  // Admin (4-argument overload, no reason) AdminDown beats Health Down.
  r = engine_->set_hold(HoldSource::Admin, Selector{Selector::Kind::Peer, "127.0.0.2"},
                        core::Hold::AdminDown, 7);
  EXPECT_EQ(r.error, "");
  s = find("127.0.0.2");
  EXPECT_EQ(s->hold, core::Hold::AdminDown);
  EXPECT_EQ(s->hold_source, HoldSource::Admin);
  EXPECT_EQ(s->hold_reason, "");
  // Released: the health reason is back.
  engine_->set_hold(HoldSource::Admin, Selector{Selector::Kind::Peer, "127.0.0.2"},
                    core::Hold::None, 0);
  s = find("127.0.0.2");
  EXPECT_EQ(s->hold, core::Hold::Down);
  EXPECT_EQ(s->hold_reason, "check haproxy: timeout");
}

// A [[session]] override through the real engine loop: a verdict given by
// cause reaches the wire as each session's own signal, at once (SM-21).
TEST_F(HealthHoldTest, VerdictByCauseSendsEachSessionsOwnSignal) {
  auto strict = session_spec("127.0.0.2", "web");
  strict.maintenance_signal = core::Hold::AdminDown;
  cfg_.sessions.push_back(strict);
  cfg_.sessions.push_back(session_spec("127.0.0.3", "web"));
  cfg_.groups.push_back(group_spec("web", {"maint"}, 6));
  UdpPeer rx2("127.0.0.2", kSh), tx2("127.0.0.2", 50001);
  UdpPeer rx3("127.0.0.3", kSh), tx3("127.0.0.3", 50001);
  ASSERT_TRUE(rx2.bound() && tx2.bound() && rx3.bound() && tx3.bound());
  start();
  ASSERT_EQ(engine_->set_hold(HoldSource::Health, group_sel("web"), core::Hold::None, 0).error, "");
  ASSERT_NE(bring_up(rx2, tx2, "127.0.0.2"), 0u);
  ASSERT_NE(bring_up(rx3, tx3, "127.0.0.3"), 0u);
  EXPECT_TRUE(find("127.0.0.2")->signal_override);
  EXPECT_FALSE(find("127.0.0.3")->signal_override);

  rx2.drain();
  rx3.drain();
  const auto t0 = std::chrono::steady_clock::now();
  auto r = engine_->set_hold(HoldSource::Health, group_sel("web"), HoldCause::Maintenance,
                             "maintenance: check maint: file present");
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.matched, 2u);
  auto not_up = [](const Received& x) { return x.pkt.state != State::Up; };
  auto a = rx2.recv_until(not_up, 2000ms);
  auto b = rx3.recv_until(not_up, 2000ms);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->pkt.state, State::AdminDown);
  EXPECT_EQ(a->pkt.diag, 7);
  EXPECT_EQ(b->pkt.state, State::Down);
  EXPECT_EQ(b->pkt.diag, 6);
  EXPECT_LT(a->at - t0, 300ms);
  EXPECT_LT(b->at - t0, 300ms);
  EXPECT_EQ(find("127.0.0.2")->hold_reason, "maintenance: check maint: file present");
}

// A group declared by [[group]] is a valid selector even with no session.
TEST_F(HealthHoldTest, DeclaredGroupWithoutSessionsIsKnown) {
  cfg_.sessions.push_back(session_spec("127.0.0.2", "web"));
  cfg_.groups.push_back(group_spec("empty", {"haproxy"}));
  start();
  auto r = engine_->set_hold(HoldSource::Health, group_sel("empty"), core::Hold::Down, 5, "x");
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.matched, 0u);
  r = engine_->set_hold(HoldSource::Health, group_sel("nope"), core::Hold::Down, 5, "x");
  EXPECT_NE(r.error, "");
}

// Issue 3 item 4: heartbeats flowing -> no trip; heartbeats stop -> Down diag 5
// within about the timeout, one warning; heartbeats resume -> the hold is
// released and the session comes back Up through the handshake. A group
// without checks is untouched throughout.
TEST_F(HealthHoldTest, FailsafeTripsWhenHeartbeatsStopAndRecovers) {
  cfg_.health.failsafe_timeout = core::Duration{200'000};
  cfg_.sessions.push_back(session_spec("127.0.0.2", "web"));
  cfg_.sessions.push_back(session_spec("127.0.0.3", "plain"));
  cfg_.groups.push_back(group_spec("web", {"haproxy"}));
  UdpPeer rx("127.0.0.2", kSh);
  UdpPeer tx("127.0.0.2", 50001);
  UdpPeer rx3("127.0.0.3", kSh);
  UdpPeer tx3("127.0.0.3", 50001);
  ASSERT_TRUE(rx.bound() && tx.bound() && rx3.bound() && tx3.bound());
  Engine& e = open();
  Heart heart(e);
  e.run();
  ASSERT_EQ(e.set_hold(HoldSource::Health, group_sel("web"), core::Hold::None, 0, "healthy").error,
            "");
  const std::uint32_t discr = bring_up(rx, tx, "127.0.0.2");
  ASSERT_NE(discr, 0u);
  const std::uint32_t discr3 = bring_up(rx3, tx3, "127.0.0.3");
  ASSERT_NE(discr3, 0u);

  // Three timeouts' worth of heartbeats: no trip.
  std::this_thread::sleep_for(600ms);
  EXPECT_EQ(e.stats().failsafe_trips, 0u);
  EXPECT_EQ(find("127.0.0.2")->state, State::Up);
  EXPECT_EQ(find("127.0.0.2")->hold, core::Hold::None);

  // The ops loop "stalls".
  rx.drain();
  heart.beat(false);
  const auto t0 = std::chrono::steady_clock::now();
  auto down = rx.recv_until([](const Received& x) { return x.pkt.state == State::Down; }, 3000ms);
  ASSERT_TRUE(down);
  EXPECT_EQ(down->pkt.diag, 5);
  // timeout 200 ms + check period 50 ms; generous bound, far below the 1 s
  // periodic slot plus detection time.
  EXPECT_LT(down->at - t0, 1000ms);
  auto s = find("127.0.0.2");
  EXPECT_EQ(s->state, State::Down);
  EXPECT_EQ(s->hold, core::Hold::Down);
  EXPECT_EQ(s->hold_source, HoldSource::Failsafe);
  EXPECT_NE(s->hold_reason.find("health verdicts stalled for "), std::string::npos)
      << s->hold_reason;
  EXPECT_NE(s->hold_reason.find("(fail-safe)"), std::string::npos) << s->hold_reason;
  EXPECT_EQ(e.stats().failsafe_trips, 1u);
  // The group without checks stays Up (refresh it so detection time is moot).
  tx3.send("127.0.0.1", kSh, bfd_packet(State::Up, kPeerDiscr, discr3));
  std::this_thread::sleep_for(300ms);
  auto plain = find("127.0.0.3");
  EXPECT_EQ(plain->state, State::Up);
  EXPECT_EQ(plain->hold, core::Hold::None);
  EXPECT_EQ(e.stats().failsafe_trips, 1u);  // one trip, not one per check
  EXPECT_EQ(count_lines("fail-safe: no health heartbeat"), 1);

  // While tripped the peer cannot bring it up.
  rx.drain();
  tx.send("127.0.0.1", kSh, bfd_packet(State::Down, kPeerDiscr, discr));
  EXPECT_FALSE(rx.recv_until([](const Received& x) { return x.pkt.state != State::Down; }, 300ms));

  // Heartbeats resume: released within a check period or two, then Up again.
  heart.beat(true);
  ASSERT_TRUE(wait_session("127.0.0.2",
                           [](const SessionSnapshot& x) { return x.hold == core::Hold::None; }));
  EXPECT_EQ(find("127.0.0.2")->hold_reason, "");
  EXPECT_NE(bring_up(rx, tx, "127.0.0.2"), 0u);
  EXPECT_EQ(count_lines("fail-safe released"), 1);
  EXPECT_EQ(e.stats().failsafe_trips, 1u);
}

// The first window starts at run(), not at construction: a heartbeat long
// before run() does not trip at once; with no heartbeat after run() it trips
// after about the timeout. The start-up hold stays (strongest wins).
TEST_F(HealthHoldTest, FailsafeWindowStartsAtRun) {
  cfg_.health.failsafe_timeout = core::Duration{200'000};
  cfg_.sessions.push_back(session_spec("127.0.0.2", "web"));
  cfg_.groups.push_back(group_spec("web", {"haproxy"}));
  Engine& e = open();
  e.heartbeat();
  std::this_thread::sleep_for(400ms);  // older than the timeout at run()
  e.run();
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(e.stats().failsafe_trips, 0u);
  auto s = wait_session("127.0.0.2", [](const SessionSnapshot&) { return true; });
  ASSERT_TRUE(s);
  EXPECT_EQ(s->hold_reason, kStartupReason);

  // No heartbeat at all: trips.
  const auto t0 = std::chrono::steady_clock::now();
  while (e.stats().failsafe_trips == 0 && std::chrono::steady_clock::now() - t0 < 3s) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(e.stats().failsafe_trips, 1u);
  // The health verdict arriving later does not lift the fail-safe hold.
  e.set_hold(HoldSource::Health, group_sel("web"), core::Hold::None, 0, "healthy");
  s = find("127.0.0.2");
  EXPECT_EQ(s->hold, core::Hold::Down);
  EXPECT_NE(s->hold_reason.find("(fail-safe)"), std::string::npos) << s->hold_reason;
}

// No health-managed group: no fail-safe, even without any heartbeat.
TEST_F(HealthHoldTest, NoFailsafeWithoutHealthManagedGroups) {
  cfg_.health.failsafe_timeout = core::Duration{100'000};
  cfg_.sessions.push_back(session_spec("127.0.0.2", "web"));
  cfg_.groups.push_back(group_spec("web", {}));  // declared, but no checks
  UdpPeer rx("127.0.0.2", kSh);
  UdpPeer tx("127.0.0.2", 50001);
  start();
  const std::uint32_t discr = bring_up(rx, tx, "127.0.0.2");
  ASSERT_NE(discr, 0u);
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(engine_->stats().failsafe_trips, 0u);
  auto s = find("127.0.0.2");
  EXPECT_EQ(s->state, State::Up);
  EXPECT_EQ(s->hold, core::Hold::None);
  EXPECT_EQ(count_lines("fail-safe"), 0);
}

// ---------------------------------------------------------------- hold rules (pure)

detail::HoldTarget tgt(const char* peer, const char* group) {
  return detail::HoldTarget{boost::asio::ip::make_address(peer), "", 0, group};
}

TEST(HoldRulesReason, WinningRuleCarriesItsReason) {
  detail::HoldRules h;
  auto none_in = [](const detail::PeerMatch&, const std::string&) { return false; };
  h.set_group(HoldSource::Health, "web", {core::Hold::Down, 5, "check a: down"}, none_in);
  auto e = h.effective(tgt("198.18.0.1", "web"));
  EXPECT_EQ(e.reason, "check a: down");
  EXPECT_EQ(e.source, HoldSource::Health);
  // The fail-safe slot takes part in strongest-wins; on a tie the lower
  // source (Health) keeps its reason.
  h.set_group(detail::kFailsafeSource, "web", {core::Hold::Down, 5, "stalled"}, none_in);
  e = h.effective(tgt("198.18.0.1", "web"));
  EXPECT_EQ(e.source, HoldSource::Health);
  EXPECT_EQ(e.reason, "check a: down");
  h.set_group(HoldSource::Health, "web", {core::Hold::None, 0}, none_in);
  e = h.effective(tgt("198.18.0.1", "web"));
  EXPECT_EQ(e.hold, core::Hold::Down);
  EXPECT_EQ(e.source, detail::kFailsafeSource);
  EXPECT_EQ(e.reason, "stalled");
  h.set_group(detail::kFailsafeSource, "web", {core::Hold::None, 0}, none_in);
  EXPECT_TRUE(h.empty());
}

}  // namespace
}  // namespace beacon::engine
