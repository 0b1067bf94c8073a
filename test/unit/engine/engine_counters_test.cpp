// EngineCore's share of the counters: drops the demultiplexer attributes to
// a session, passive sessions refused, the timer-lateness histogram, and the
// per-session counters as snapshots carry them. FakeClock + FakeTransport:
// no root, no sleeps.
#include <gtest/gtest.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include <array>
#include <memory>
#include <numeric>

#include "beacon/engine/core.hpp"
#include "fake_clock.hpp"
#include "fake_transport.hpp"
#include "session_driver.hpp"

namespace beacon::engine {
namespace {

namespace ip = boost::asio::ip;
using core::Duration;
using core::FlapCause;
using core::TimePoint;
using core::wire::ControlPacket;
using core::wire::DropReason;
using core::wire::State;
using test::ms;

constexpr std::size_t at(DropReason r) {
  return static_cast<std::size_t>(r);
}

class CountersTest : public ::testing::Test {
 protected:
  void open() {
    auto log = std::make_shared<spdlog::logger>("counters-test",
                                                std::make_shared<spdlog::sinks::null_sink_mt>());
    core_ = std::make_unique<EngineCore>(opts_, net_, clock_, log, 11);
    core_->open();
    core_->start();
  }

  config::SessionSpec spec(const std::string& peer, bool multihop = false) {
    config::SessionSpec s;
    s.peer = ip::make_address(peer);
    s.group = "web";
    s.multihop = multihop;
    s.min_ttl = multihop ? 250 : 255;
    s.params = core::SessionParams{ms(50), ms(50), 3, false};
    return s;
  }

  RxInfo info(const std::string& peer, bool multihop = false, int ttl = 255) {
    RxInfo i;
    i.src = ip::make_address(peer);
    i.src_port = 50001;
    i.dst = ip::make_address("10.255.255.254");
    i.ifindex = multihop ? 0 : 2;
    i.ttl = ttl;
    i.multihop = multihop;
    return i;
  }

  void deliver(const ControlPacket& p, const RxInfo& i) {
    std::array<std::uint8_t, core::wire::kMaxPacketLength> buf{};
    const std::size_t n = core::wire::encode(p, buf);
    core_->on_datagram(std::span<const std::uint8_t>(buf.data(), n), i);
  }

  ControlPacket packet(State s, std::uint32_t yd, std::uint32_t md = 0x5eed0001) {
    ControlPacket p;
    p.state = s;
    p.detect_mult = 3;
    p.my_discriminator = md;
    p.your_discriminator = yd;
    p.desired_min_tx_us = 50'000;
    p.required_min_rx_us = 50'000;
    return p;
  }

  // Serves every wake-up up to `t`, as the loop would.
  void run_until(TimePoint t) {
    for (int guard = 0; guard < 1'000'000; ++guard) {
      const auto w = core_->next_wakeup();
      if (!w || *w > t) break;
      clock_.advance_to(std::max(*w, clock_.now()));
      while (core_->on_timer()) {
      }
    }
    clock_.advance_to(t);
  }

  SessionSnapshot only() const {
    auto all = core_->sessions();
    EXPECT_EQ(all.size(), 1u);
    return all.empty() ? SessionSnapshot{} : all.front();
  }

  // Handshake from the peer's side; returns our discriminator.
  std::uint32_t bring_up(const std::string& peer, bool multihop = false) {
    const RxInfo i = info(peer, multihop);
    deliver(packet(State::Down, 0), i);
    const std::uint32_t ours = only().local_discr;
    deliver(packet(State::Up, ours), i);
    EXPECT_EQ(only().state, State::Up);
    return ours;
  }

  test::FakeClock clock_;
  test::FakeTransport net_{clock_};
  EngineOptions opts_;
  std::unique_ptr<EngineCore> core_;
};

// MH-10 and MH-05: a packet that found its session by discriminator but came
// on the wrong port or below the session's minimum TTL counts against that
// session as well as engine-wide.
TEST_F(CountersTest, DemuxDropsAttributedToTheirSession) {
  opts_.multihop_min_ttl = 240;  // the engine-wide minimum is below the session's 250
  opts_.sessions.push_back(spec("10.0.0.1", true));
  open();
  const std::uint32_t ours = bring_up("10.0.0.1", true);
  deliver(packet(State::Up, ours), info("10.0.0.1", false));      // single-hop port
  deliver(packet(State::Up, ours), info("10.0.0.1", true, 252));  // accepted
  deliver(packet(State::Up, ours), info("10.0.0.1", true, 245));  // below the session's 250
  const auto s = only();
  EXPECT_EQ(s.counters.drops[at(DropReason::WrongPort)], 1u);
  EXPECT_EQ(s.counters.drops[at(DropReason::BadTtl)], 1u);
  EXPECT_EQ(core_->stats().drops[at(DropReason::WrongPort)], 1u);
  EXPECT_EQ(core_->stats().drops[at(DropReason::BadTtl)], 1u);
  EXPECT_EQ(s.counters.rx_packets, 3u);  // Down, Up, and the TTL-252 one
}

// A drop with no session to blame (garbage, unknown YD) counts only
// engine-wide.
TEST_F(CountersTest, UnattributableDropsOnlyEngineWide) {
  opts_.sessions.push_back(spec("10.0.0.1"));
  open();
  bring_up("10.0.0.1");
  deliver(packet(State::Up, 0xdeadbeef), info("10.0.0.1"));
  const std::array<std::uint8_t, 3> junk{1, 2, 3};
  core_->on_datagram(junk, info("10.0.0.1"));
  const auto s = only();
  EXPECT_EQ(std::accumulate(s.counters.drops.begin(), s.counters.drops.end(), std::uint64_t{0}),
            0u);
  EXPECT_EQ(core_->stats().drops[at(DropReason::UnknownYourDiscriminator)], 1u);
  EXPECT_EQ(core_->stats().drops[at(DropReason::TooShort)], 1u);
}

// Snapshots carry the session's flaps by cause, transitions and packets.
TEST_F(CountersTest, SnapshotCarriesFlapsTransitionsAndPackets) {
  opts_.sessions.push_back(spec("10.0.0.1"));
  open();
  const std::uint32_t ours = bring_up("10.0.0.1");
  run_until(clock_.now() + ms(500));  // silent peer: timeout
  ASSERT_EQ(only().state, State::Down);
  deliver(packet(State::Down, ours), info("10.0.0.1"));
  deliver(packet(State::Up, ours), info("10.0.0.1"));
  ASSERT_EQ(only().state, State::Up);
  ASSERT_EQ(core_->set_hold(HoldSource::Admin, Selector{}, core::Hold::Down, 0).matched, 1u);
  const auto s = only();
  const auto& c = s.counters;
  EXPECT_EQ(c.flaps[static_cast<std::size_t>(FlapCause::Timeout)], 1u);
  EXPECT_EQ(c.flaps[static_cast<std::size_t>(FlapCause::LocalHold)], 1u);
  EXPECT_EQ(
      c.transitions[static_cast<std::size_t>(State::Up)][static_cast<std::size_t>(State::Down)],
      2u);
  EXPECT_EQ(c.rx_packets, 4u);
  EXPECT_GT(c.tx_packets, 0u);
  EXPECT_EQ(s.last_change, clock_.now());
  EXPECT_GT(c.tx_lateness.count, 0u);
}

// Every timer fire lands in the engine's lateness histogram.
TEST_F(CountersTest, TimerLatenessHistogramCountsEveryFire) {
  opts_.sessions.push_back(spec("10.0.0.1"));
  opts_.sessions.push_back(spec("10.0.0.2"));
  open();
  run_until(clock_.now() + ms(3'000));
  const EngineStats st = core_->stats();
  EXPECT_GT(st.timer_fires, 0u);
  EXPECT_EQ(st.timer_lateness.count, st.timer_fires);
  EXPECT_EQ(st.timer_lateness.sum, st.timer_lateness_total);
  // A late wake-up: 7 ms after the deadline.
  const auto due = core_->next_wakeup();
  ASSERT_TRUE(due);
  clock_.advance_to(*due + ms(7));
  core_->on_timer();
  EXPECT_GE(core_->stats().timer_lateness_max, ms(7));
  EXPECT_EQ(core_->stats().timer_lateness.count, core_->stats().timer_fires);
}

// An [[accept]] rule at its cap refuses further peers; each refusal counts.
TEST_F(CountersTest, PassiveRefusalsCounted) {
  config::AcceptSpec a;
  a.prefix = ip::make_address("10.1.0.0");
  a.prefix_len = 16;
  a.group = "web";
  a.max_sessions = 1;
  a.params = core::SessionParams{ms(50), ms(50), 3, true};
  opts_.accepts.push_back(a);
  open();
  deliver(packet(State::Down, 0, 0x1001), info("10.1.0.1"));
  deliver(packet(State::Down, 0, 0x1002), info("10.1.0.2"));
  deliver(packet(State::Down, 0, 0x1003), info("10.1.0.3"));
  const EngineStats st = core_->stats();
  EXPECT_EQ(st.passive_created, 1u);
  EXPECT_EQ(st.passive_refused, 2u);
  EXPECT_EQ(st.drops[at(DropReason::PassiveLimit)], 2u);
}

}  // namespace
}  // namespace beacon::engine
