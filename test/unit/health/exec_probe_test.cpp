// exec probe: real child processes (posix_spawn + pidfd). Generous time
// bounds only; every test checks that no child is left behind.
#include <gtest/gtest.h>

#include "../../../src/health/probes_impl.hpp"
#include "haproxy_lab.hpp"

namespace beacon::health {
namespace {

using namespace std::chrono_literals;
using testing::LoopWatch;
using testing::run_once;
using testing::to_ms;

config::CheckSpec exec_spec(std::vector<std::string> command, core::Duration timeout = 2000ms) {
  config::CheckSpec s;
  s.name = "custom";
  s.type = config::CheckType::Exec;
  s.command = std::move(command);
  s.timeout = timeout;
  s.interval = 1000ms;
  return s;
}

// True once /proc/<pid> is gone (exited AND reaped), polled up to `limit`.
bool gone(pid_t pid, std::chrono::milliseconds limit, boost::asio::io_context* io = nullptr) {
  auto until = std::chrono::steady_clock::now() + limit;
  std::string proc = "/proc/" + std::to_string(pid);
  while (std::chrono::steady_clock::now() < until) {
    if (::access(proc.c_str(), F_OK) != 0) return true;
    if (io != nullptr) {
      io->restart();
      io->run_for(10ms);
    } else {
      std::this_thread::sleep_for(10ms);
    }
  }
  return false;
}

pid_t read_pid(const std::string& file) {
  std::ifstream in(file);
  pid_t p = -1;
  in >> p;
  return p;
}

class ExecProbeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/beacon-exec-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  boost::asio::io_context io_;
  std::string dir_;
};

TEST_F(ExecProbeTest, ExitZeroPasses) {
  auto probe = make_exec_probe(io_, exec_spec({"/bin/true"}));
  auto r = run_once(io_, *probe);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, Status::Pass) << r->reason;
  EXPECT_EQ(r->reason, "exit 0");
  EXPECT_GT(r->latency.count(), 0);
  std::printf("exec /bin/true latency %lldus\n", static_cast<long long>(r->latency.count()));
  // Repeatable, and PATH lookup works for a bare name.
  auto again = run_once(io_, *make_exec_probe(io_, exec_spec({"true"})));
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, Status::Pass) << again->reason;
}

TEST_F(ExecProbeTest, NonZeroExitFailsWithFirstLineOfOutput) {
  auto r = run_once(io_, *make_exec_probe(io_, exec_spec({"/bin/false"})));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, Status::Fail);
  EXPECT_EQ(r->reason, "exit 1");

  r = run_once(
      io_, *make_exec_probe(
               io_, exec_spec({"/bin/sh", "-c", "echo 'backend db is down'; echo more; exit 3"})));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, Status::Fail);
  EXPECT_EQ(r->reason, "exit 3: backend db is down");

  r = run_once(io_,
               *make_exec_probe(io_, exec_spec({"/bin/sh", "-c", "echo to-stderr >&2; exit 2"})));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->reason, "exit 2: to-stderr");
}

TEST_F(ExecProbeTest, KilledBySignalFails) {
  auto r = run_once(io_, *make_exec_probe(io_, exec_spec({"/bin/sh", "-c", "kill -9 $$"})));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, Status::Fail);
  EXPECT_EQ(r->reason, "killed by signal 9");
}

TEST_F(ExecProbeTest, TimeoutKillsTheProcessGroupQuicklyWithoutBlockingTheLoop) {
  std::string child_file = dir_ + "/child", grandchild_file = dir_ + "/grandchild";
  auto probe = make_exec_probe(io_, exec_spec({"/bin/sh", "-c",
                                               "sleep 5 & echo $! > " + grandchild_file +
                                                   "; echo $$ > " + child_file + "; wait"},
                                              200ms));
  LoopWatch watch(io_);
  watch.start();
  auto r = run_once(io_, *probe);
  watch.stop();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, Status::Fail);
  EXPECT_EQ(r->reason, "timeout after 200ms");
  EXPECT_GE(r->latency, 150ms);
  EXPECT_LT(r->latency, 2000ms);
  EXPECT_GE(watch.ticks(), 10);
  EXPECT_LT(watch.worst_lateness(), 100ms);
  std::printf("exec timeout latency %lldms, loop ticks %d, worst lateness %lldms\n",
              static_cast<long long>(to_ms(r->latency).count()), watch.ticks(),
              static_cast<long long>(watch.worst_lateness().count()));
  pid_t child = read_pid(child_file), grandchild = read_pid(grandchild_file);
  ASSERT_GT(child, 0);
  ASSERT_GT(grandchild, 0);
  // Our child is reaped by the probe (no zombie) on the io_context.
  EXPECT_TRUE(gone(child, 2000ms, &io_)) << "child " << child << " still exists";
  // The grandchild was killed with the group; its reaper is whoever inherited
  // it, so accept a zombie there but never a live sleep.
  auto until = std::chrono::steady_clock::now() + 2s;
  bool dead = false;
  while (!dead && std::chrono::steady_clock::now() < until) {
    std::ifstream stat("/proc/" + std::to_string(grandchild) + "/stat");
    std::string line;
    if (!std::getline(stat, line)) {
      dead = true;
    } else {
      auto close = line.rfind(')');
      dead = close != std::string::npos && close + 2 < line.size() && line[close + 2] == 'Z';
    }
    if (!dead) std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(dead) << "grandchild " << grandchild << " still running";
}

TEST_F(ExecProbeTest, MissingBinaryFails) {
  auto r = run_once(io_, *make_exec_probe(io_, exec_spec({"/nonexistent/my-check", "--quick"})));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, Status::Fail);
  EXPECT_EQ(r->reason, "cannot run /nonexistent/my-check: No such file or directory");

  r = run_once(io_, *make_exec_probe(io_, exec_spec({})));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, Status::Fail);
  EXPECT_EQ(r->reason, "no command configured");
}

TEST_F(ExecProbeTest, LargeOutputDoesNotBlockTheChild) {
  auto r = run_once(
      io_, *make_exec_probe(io_, exec_spec({"/bin/sh", "-c",
                                            "head -c 1000000 /dev/zero | tr '\\0' x; exit 4"})));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, Status::Fail);
  EXPECT_EQ(r->reason, "exit 4: " + std::string(200, 'x'));  // bounded
}

TEST_F(ExecProbeTest, CancelKillsAndReapsWithoutCallback) {
  std::string child_file = dir_ + "/child";
  auto probe = make_exec_probe(
      io_, exec_spec({"/bin/sh", "-c", "echo $$ > " + child_file + "; exec sleep 5"}, 3000ms));
  int calls = 0;
  probe->run([&](Result) { ++calls; });
  pid_t child = -1;
  auto until = std::chrono::steady_clock::now() + 2s;
  while (child <= 0 && std::chrono::steady_clock::now() < until) {
    io_.run_for(10ms);
    child = read_pid(child_file);
  }
  ASSERT_GT(child, 0);
  probe->cancel();
  EXPECT_TRUE(gone(child, 2000ms, &io_));
  EXPECT_EQ(calls, 0);
}

TEST_F(ExecProbeTest, SecondRunSupersedesTheFirst) {
  auto probe = make_exec_probe(io_, exec_spec({"/bin/sleep", "5"}, 3000ms));
  std::vector<Result> results;
  probe->run([&](Result r) { results.push_back(std::move(r)); });
  io_.run_for(20ms);
  probe->run([&](Result r) { results.push_back(std::move(r)); });
  probe->cancel();
  io_.restart();
  io_.run_for(100ms);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].reason, "superseded");
}

}  // namespace
}  // namespace beacon::health
