// Engine::publish_every / published(): the periodic snapshot for readers that
// must not wait on the engine loop (the metrics scrape). Real loop and
// sockets in a private network namespace (needs root; skipped otherwise).
#include <gtest/gtest.h>

#include <chrono>
#include <set>
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

class PublishTest : public test::EngineFixture {
 protected:
  void SetUp() override {
    if (!test::enter_private_netns()) GTEST_SKIP() << "needs root to unshare(CLONE_NEWNET)";
    init_log("publish-test", "%v");
  }

  // Waits (bounded) for a snapshot with sequence >= `seq`.
  std::shared_ptr<const EngineSnapshot> wait_for(std::uint64_t seq) {
    for (int i = 0; i < 300; ++i) {
      auto p = engine_->published();
      if (p && p->sequence >= seq) return p;
      std::this_thread::sleep_for(10ms);
    }
    return nullptr;
  }
};

// More sessions than several chunks (64): every one is in the snapshot once, with
// the stats; a new snapshot follows each period.
TEST_F(PublishTest, SnapshotHoldsEverySessionAndRepeats) {
  for (int i = 0; i < 300; ++i) {
    cfg_.sessions.push_back(
        spec("127.0." + std::to_string(1 + i / 200) + "." + std::to_string(1 + i % 200)));
  }
  open();
  engine_->publish_every(core::Duration{200'000});
  engine_->run();
  auto first = wait_for(1);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->sessions.size(), 300u);
  std::set<std::string> peers;
  for (const auto& s : first->sessions) peers.insert(s.peer);
  EXPECT_EQ(peers.size(), 300u);
  EXPECT_EQ(first->stats.sessions, 300u);
  EXPECT_NE(first->anchor_wall.time_since_epoch().count(), 0);
  auto later = wait_for(first->sequence + 2);
  ASSERT_TRUE(later);
  EXPECT_GT(later->taken, first->taken);
  EXPECT_EQ(later->anchor_steady, first->anchor_steady);  // fixed: stable timestamps
  // The first snapshot is untouched by later ones (immutable once published).
  EXPECT_EQ(first->sessions.size(), 300u);
  // Building it counts as loop time held by a reader.
  EXPECT_GT(engine_->stats().call_max.count(), 0);
}

TEST_F(PublishTest, NothingPublishedUnlessAsked) {
  cfg_.sessions.push_back(spec("127.0.0.2"));
  start();
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(engine_->published(), nullptr);
  engine_->publish_every(core::Duration{100'000});  // after run(): ignored
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(engine_->published(), nullptr);
}

}  // namespace
}  // namespace beacon::engine
