// `interface` check (rtnetlink events). Each test moves the test's main
// thread into a private network namespace (unshare(CLONE_NEWNET), root only,
// else GTEST_SKIP) before the io thread is created, so the io thread, the
// netlink socket and the `ip` commands all live in that namespace and the
// host's interfaces are never touched. veth pairs are used (the dummy driver
// may be unavailable); lo covers "operstate unknown".
#include <gtest/gtest.h>
#include <sched.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <thread>

#include "beacon/health/probe.hpp"
#include "probe_test_support.hpp"

namespace beacon::health {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

using test::Event;
using test::Loop;
using test::ms_since;
using test::Recorder;

void sh(const std::string& cmd) {
  const int rc = std::system((cmd + " >/dev/null 2>&1").c_str());
  ASSERT_EQ(rc, 0) << cmd;
}

class InterfaceProbeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root for a private network namespace";
    if (::unshare(CLONE_NEWNET) != 0) GTEST_SKIP() << "unshare(CLONE_NEWNET) failed";
    loop_.emplace();  // io thread created after unshare: inherits the namespace
  }
  void TearDown() override {
    if (probe_) loop_->sync([&] { probe_.reset(); });
    loop_.reset();
    // The namespace (and every link in it) vanishes with its last user.
  }
  void start(const std::string& ifname) {
    config::CheckSpec spec;
    spec.name = "uplink";
    spec.type = config::CheckType::Interface;
    spec.interface = ifname;
    probe_ = make_probe(loop_->io(), spec);
    ASSERT_TRUE(probe_->event_driven());
    loop_->sync([&] { probe_->watch(rec_.fn()); });
  }
  // Runs `cmd` and waits for the next report; latency includes running `ip`.
  std::optional<Event> change(const char* what, const std::string& cmd, Status status,
                              const std::string& reason) {
    const std::size_t index = rec_.size();
    const auto t0 = Clock::now();
    sh(cmd);
    auto ev = rec_.wait(index);
    EXPECT_TRUE(ev) << what << ": no event";
    if (!ev) return ev;
    EXPECT_EQ(ev->result.status, status) << what << ": " << ev->result.reason;
    EXPECT_EQ(ev->result.reason, reason) << what;
    EXPECT_LT(ev->at - t0, 1s) << what;
    std::printf("[latency] interface %-22s %8.3f ms incl. `ip` (%s)\n", what, ms_since(t0, ev->at),
                ev->result.reason.c_str());
    return ev;
  }

  // Like change(), but the kernel may report intermediate states first (an
  // up link is brought down before RTM_DELLINK): waits for `reason`; every
  // report on the way must already have `status` when that is Fail.
  void change_until(const char* what, const std::string& cmd, Status status,
                    const std::string& reason) {
    std::size_t index = rec_.size();
    const auto t0 = Clock::now();
    sh(cmd);
    for (int n = 0; n < 10; ++n, ++index) {
      auto ev = rec_.wait(index);
      ASSERT_TRUE(ev) << what << ": no event with reason " << reason;
      if (status == Status::Fail) {
        EXPECT_EQ(ev->result.status, Status::Fail) << what << ": " << ev->result.reason;
      }
      if (ev->result.reason != reason) continue;
      EXPECT_EQ(ev->result.status, status);
      EXPECT_LT(ev->at - t0, 1s) << what;
      std::printf("[latency] interface %-22s %8.3f ms incl. `ip` (%s; %d intermediate)\n", what,
                  ms_since(t0, ev->at), ev->result.reason.c_str(), n);
      return;
    }
    ADD_FAILURE() << what << ": too many reports";
  }

  std::optional<Loop> loop_;
  Recorder rec_;
  std::unique_ptr<Probe> probe_;
};

TEST_F(InterfaceProbeTest, DownUpDeleteRecreate) {
  sh("ip link add epa type veth peer name epb");
  sh("ip link set epa up");
  sh("ip link set epb up");
  start("epa");
  auto first = rec_.wait(0);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->result.status, Status::Pass) << first->result.reason;
  EXPECT_EQ(first->result.reason, "epa: up");

  change("admin-down", "ip link set epa down", Status::Fail,
         "epa: link down (administratively down)");
  // Coming up, the kernel may first report operstate lowerlayerdown (linkwatch).
  change_until("admin-up", "ip link set epa up", Status::Pass, "epa: up");
  change_until("delete", "ip link del epa", Status::Fail, "epa: interface does not exist");
  // Re-created with a new ifindex: matched by name. Comes up in steps.
  sh("ip link add epa type veth peer name epb");
  const auto t0 = Clock::now();
  sh("ip link set epb up && ip link set epa up");
  std::optional<Event> last;
  for (std::size_t i = rec_.size() - 1; i < 20; ++i) {
    auto ev = rec_.wait(i, 2s);
    if (!ev) break;
    last = ev;
    if (ev->result.status == Status::Pass) break;
  }
  ASSERT_TRUE(last);
  EXPECT_EQ(last->result.status, Status::Pass) << last->result.reason;
  EXPECT_EQ(last->result.reason, "epa: up");
  std::printf("[latency] interface %-22s %8.3f ms incl. `ip`\n", "recreate+up",
              ms_since(t0, last->at));
}

TEST_F(InterfaceProbeTest, PeerDownMeansNoCarrier) {
  sh("ip link add epa type veth peer name epb");
  sh("ip link set epa up && ip link set epb up");
  start("epa");
  auto first = rec_.wait(0);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->result.status, Status::Pass);
  change("peer-down", "ip link set epb down", Status::Fail, "epa: no carrier");
  change_until("peer-up", "ip link set epb up", Status::Pass, "epa: up");
}

TEST_F(InterfaceProbeTest, MissingAtStartThenCreated) {
  start("epx");
  auto first = rec_.wait(0);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->result.status, Status::Fail);
  EXPECT_EQ(first->result.reason, "epx: interface does not exist");
  // Created down: still failing, but with the new reason.
  change("created-down", "ip link add epx type veth peer name epy", Status::Fail,
         "epx: link down (administratively down)");
}

TEST_F(InterfaceProbeTest, RenamedAwayDoesNotExist) {
  sh("ip link add epa type veth peer name epb");
  start("epa");
  auto first = rec_.wait(0);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->result.reason, "epa: link down (administratively down)");
  change("rename-away", "ip link set epa name epc", Status::Fail, "epa: interface does not exist");
  change("rename-back", "ip link set epc name epa", Status::Fail,
         "epa: link down (administratively down)");
}

TEST_F(InterfaceProbeTest, LoopbackOperstateUnknownCountsAsUp) {
  sh("ip link set lo up");
  start("lo");
  auto first = rec_.wait(0);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->result.status, Status::Pass) << first->result.reason;
  EXPECT_EQ(first->result.reason, "lo: up (operstate unknown)");
}

TEST_F(InterfaceProbeTest, UnrelatedLinksDoNotReport) {
  sh("ip link add epa type veth peer name epb");
  sh("ip link set epa up && ip link set epb up");
  start("epa");
  ASSERT_TRUE(rec_.wait(0));
  sh("ip link add epq type veth peer name epr");
  sh("ip link set epq up && ip link set epr up && ip link set epq down && ip link del epq");
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(rec_.size(), 1u);
}

TEST_F(InterfaceProbeTest, RunReportsCurrentState) {
  sh("ip link add epa type veth peer name epb");
  config::CheckSpec spec;
  spec.type = config::CheckType::Interface;
  spec.interface = "epa";
  probe_ = make_probe(loop_->io(), spec);
  loop_->sync([&] { probe_->run(rec_.fn()); });
  auto ev = rec_.wait(0);
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->result.status, Status::Fail);
  EXPECT_EQ(ev->result.reason, "epa: link down (administratively down)");
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(rec_.size(), 1u);  // run() is one report, not a watch
}

TEST_F(InterfaceProbeTest, NoCallbackAfterCancel) {
  sh("ip link add epa type veth peer name epb");
  start("epa");
  ASSERT_TRUE(rec_.wait(0));
  loop_->sync([&] { probe_->cancel(); });
  sh("ip link set epa up && ip link del epa");
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(rec_.size(), 1u);
}

TEST_F(InterfaceProbeTest, EmptyNameFails) {
  start("");
  auto ev = rec_.wait(0);
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->result.status, Status::Fail);
  EXPECT_FALSE(ev->result.reason.empty());
}

}  // namespace
}  // namespace beacon::health
