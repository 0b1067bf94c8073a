// Engine::view(): what the control socket reads. Never a wait on the engine
// loop, yet fresh: once a hold, maintenance or reload call returns, every
// reader (this thread or another) sees its effect. Real loop and sockets in
// a private network namespace (needs root; skipped otherwise).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "beacon/engine/engine.hpp"
#include "netns_peer.hpp"

namespace beacon::engine {
namespace {

using namespace std::chrono_literals;

config::SessionSpec spec(const std::string& peer) {
  return test::loopback_session(peer);
}

std::string peer_address(int i) {
  return "127.0." + std::to_string(1 + i / 250) + "." + std::to_string(1 + i % 250);
}

class ViewTest : public test::EngineFixture {
 protected:
  void SetUp() override {
    if (!test::enter_private_netns()) GTEST_SKIP() << "needs root to unshare(CLONE_NEWNET)";
    init_log("view-test", "%v");
  }

  // `n` sessions, a long period (so only changes republish), running.
  void start_with(int n, core::Duration period = core::Duration{10'000'000}) {
    for (int i = 0; i < n; ++i) cfg_.sessions.push_back(spec(peer_address(i)));
    open();
    engine_->publish_every(period);
    engine_->run();
    for (int i = 0; i < 300 && !engine_->published(); ++i) std::this_thread::sleep_for(10ms);
    ASSERT_TRUE(engine_->published());
  }

  static std::size_t held(const EngineSnapshot& s, core::Hold h) {
    std::size_t n = 0;
    for (const auto& x : s.sessions) n += x.hold == h ? 1 : 0;
    return n;
  }
};

// A hold is visible in the very next read, with no wait and no periodic
// build in between (the period is 10 s).
TEST_F(ViewTest, HoldIsVisibleAtOnceAfterTheCallReturns) {
  start_with(300);
  auto before = engine_->view();
  EXPECT_EQ(held(*before, core::Hold::AdminDown), 0u);
  HoldResult r =
      engine_->set_hold(HoldSource::Admin, Selector{}, core::Hold::AdminDown, 0, "operator test");
  ASSERT_TRUE(r.error.empty()) << r.error;
  auto after = engine_->view();
  EXPECT_GT(after->sequence, before->sequence);
  EXPECT_GT(after->changes, before->changes);
  ASSERT_EQ(after->sessions.size(), 300u);
  EXPECT_EQ(held(*after, core::Hold::AdminDown), 300u);
  for (const auto& s : after->sessions) {
    EXPECT_EQ(s.state, core::wire::State::AdminDown) << s.peer;
    EXPECT_EQ(s.hold_reason, "operator test") << s.peer;
  }
  // Released: visible at once too.
  engine_->set_hold(HoldSource::Admin, Selector{}, core::Hold::None, 0);
  EXPECT_EQ(held(*engine_->view(), core::Hold::AdminDown), 0u);
}

// Another client (another thread) that reads after the change sees it.
TEST_F(ViewTest, AnotherReaderSeesTheChange) {
  start_with(100);
  std::atomic<bool> changed{false};
  std::atomic<std::size_t> seen{0};
  std::thread reader([&] {
    for (int i = 0; i < 500 && !changed.load(); ++i) std::this_thread::sleep_for(1ms);
    seen = held(*engine_->view(), core::Hold::Down);
  });
  engine_->set_maintenance({MaintenanceScope{"", "maintenance test"}});
  changed = true;
  reader.join();
  EXPECT_EQ(seen.load(), 100u);
}

// A change nobody can see (the same hold again) does not rebuild.
TEST_F(ViewTest, UnchangedHoldDoesNotRepublish) {
  start_with(50);
  engine_->set_hold(HoldSource::Admin, Selector{}, core::Hold::Down, 0, "same");
  const auto seq = engine_->view()->sequence;
  for (int i = 0; i < 5; ++i) {
    engine_->set_hold(HoldSource::Admin, Selector{}, core::Hold::Down, 0, "same");
  }
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(engine_->view()->sequence, seq);
}

// A reload's added session is in the next read.
TEST_F(ViewTest, ReloadedSessionIsVisibleAtOnce) {
  start_with(10);
  config::Config next = cfg_;
  next.sessions.push_back(spec("127.0.9.9"));
  ReloadResult r = engine_->reload(next);
  ASSERT_TRUE(r.applied);
  bool found = false;
  for (const auto& s : engine_->view()->sessions) found = found || s.peer == "127.0.9.9";
  EXPECT_TRUE(found);
}

#ifdef BEACON_TEST_HOOKS
// A stalled engine loop never delays a reader.
TEST_F(ViewTest, ReadNeverWaitsOnAStalledLoop) {
  start_with(10);
  engine_->debug_stall(core::Duration{800'000});
  std::this_thread::sleep_for(50ms);  // the stall has begun
  const auto t0 = std::chrono::steady_clock::now();
  auto v = engine_->view();
  const auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(v);
  EXPECT_EQ(v->sessions.size(), 10u);
  EXPECT_LT(took, 50ms);
}
#endif

// The cost on the engine loop of republishing 1,000 sessions: the build is
// cut into chunks (64 sessions per loop turn), so the longest turn it takes
// is a fraction of the whole build. Prints the figures.
TEST_F(ViewTest, RepublishCostAtThousandSessionsIsBounded) {
  start_with(1000);
  // So far the loop ran only the first build: call_max is its longest chunk.
  const core::Duration chunk_max = engine_->stats().call_max;
  core::Duration build_max = engine_->published()->build_time;
  for (int i = 0; i < 10; ++i) {
    engine_->set_hold(HoldSource::Admin, Selector{}, i % 2 ? core::Hold::None : core::Hold::Down, 0,
                      "cost");
    auto v = engine_->view();
    ASSERT_EQ(v->sessions.size(), 1000u);
    build_max = std::max(build_max, v->build_time);
  }
  const EngineStats st = engine_->stats();
  std::printf(
      "1000 sessions: snapshot build %lld us of loop time in 16 turns (max over 11 builds); "
      "longest build turn %lld us; call_max with 10 holds over all sessions %lld us\n",
      static_cast<long long>(build_max.count()), static_cast<long long>(chunk_max.count()),
      static_cast<long long>(st.call_max.count()));
  EXPECT_GT(build_max.count(), 0);
  EXPECT_GT(chunk_max.count(), 0);
  // Generous for a loaded 2-vCPU machine; about 0.25 ms when idle.
  EXPECT_LT(chunk_max.count(), 15'000);
}

}  // namespace
}  // namespace beacon::engine
