// `haproxy-process` check (pidfile + pidfd + inotify). Uses `sleep` children
// instead of HAProxy: the probe deliberately does not check the process name.
// The io_context runs on its own thread and every wait is bounded.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <thread>
#include <vector>

#include "beacon/health/probe.hpp"
#include "probe_test_support.hpp"

namespace beacon::health {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

using test::Event;
using test::Loop;
using test::ms_since;
using test::Recorder;

pid_t spawn_sleep() {
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::execlp("sleep", "sleep", "30", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  return pid;
}

char proc_state(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return 0;
  const auto rp = line.rfind(')');
  return rp == std::string::npos || rp + 2 >= line.size() ? 0 : line[rp + 2];
}

void write_file(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::trunc);
  out << text;
}

// Like HAProxy / most daemons: write a temp file and rename it over.
void write_atomic(const fs::path& p, const std::string& text) {
  const fs::path tmp = p.string() + ".new";
  write_file(tmp, text);
  fs::rename(tmp, p);
}

class HaproxyProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/eprobe-proc-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    pidfile_ = dir_ / "haproxy.pid";
  }
  void TearDown() override {
    if (probe_) loop_.sync([&] { probe_.reset(); });
    for (pid_t p : children_) {
      ::kill(p, SIGKILL);
      ::waitpid(p, nullptr, 0);
    }
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  pid_t child() {
    const pid_t p = spawn_sleep();
    EXPECT_GT(p, 0);
    children_.push_back(p);
    return p;
  }
  void reap(pid_t p) {
    ::waitpid(p, nullptr, 0);
    std::erase(children_, p);
  }
  void start(const fs::path& pidfile) {
    config::CheckSpec spec;
    spec.name = "haproxy-proc";
    spec.type = "haproxy-process";
    spec.pidfile = pidfile.string();
    probe_ = make_probe(loop_.io(), spec);
    ASSERT_TRUE(probe_->event_driven());
    loop_.sync([&] { probe_->watch(rec_.fn()); });
  }
  std::optional<Event> expect_event(std::size_t index, Status status, const std::string& reason,
                                    Clock::duration timeout = 3s) {
    auto ev = rec_.wait(index, timeout);
    EXPECT_TRUE(ev) << "no event #" << index << " (want " << reason << ")";
    if (!ev) return ev;
    EXPECT_EQ(ev->result.status, status) << ev->result.reason;
    EXPECT_EQ(ev->result.reason, reason);
    return ev;
  }

  Loop loop_;
  Recorder rec_;
  std::unique_ptr<Probe> probe_;
  fs::path dir_, pidfile_;
  std::vector<pid_t> children_;
};

std::string running(pid_t p) {
  return "haproxy pid " + std::to_string(p) + " running";
}
std::string exited(pid_t p) {
  return "haproxy pid " + std::to_string(p) + " exited";
}

TEST_F(HaproxyProcessTest, ExitIsReportedAtOnceAndRestartIsPickedUp) {
  const pid_t p1 = child();
  write_file(pidfile_, std::to_string(p1) + "\n");
  start(pidfile_);
  expect_event(0, Status::Pass, running(p1));

  // Kill: the pidfd wakes us; no polling involved.
  const auto t0 = Clock::now();
  ASSERT_EQ(::kill(p1, SIGKILL), 0);
  auto ev = expect_event(1, Status::Fail, exited(p1));
  ASSERT_TRUE(ev);
  std::printf("[latency] process kill -> Fail          %8.3f ms\n", ms_since(t0, ev->at));
  EXPECT_LT(ev->at - t0, 1s);
  reap(p1);
  // The stale pidfile still names p1: no extra report for the timer re-reads.
  std::this_thread::sleep_for(700ms);
  EXPECT_EQ(rec_.size(), 2u);

  // Restart (new pidfile via rename, as daemons do): inotify, not the timer.
  const pid_t p2 = child();
  auto t1 = Clock::now();
  write_atomic(pidfile_, std::to_string(p2) + "\n");
  ev = expect_event(2, Status::Pass, running(p2));
  ASSERT_TRUE(ev);
  std::printf("[latency] process restart -> Pass       %8.3f ms\n", ms_since(t1, ev->at));
  EXPECT_LT(ev->at - t1, 1s);

  // Second kill and an in-place rewrite (truncate + write) of the pidfile.
  const auto t2 = Clock::now();
  ASSERT_EQ(::kill(p2, SIGTERM), 0);
  ev = expect_event(3, Status::Fail, exited(p2));
  ASSERT_TRUE(ev);
  std::printf("[latency] process kill#2 -> Fail        %8.3f ms\n", ms_since(t2, ev->at));
  reap(p2);
  // Truncated pidfile (restart in progress): the reason stays "exited".
  write_file(pidfile_, "");
  std::this_thread::sleep_for(700ms);
  EXPECT_EQ(rec_.size(), 4u);
  const pid_t p3 = child();
  write_file(pidfile_, std::to_string(p3) + "\nworker lines ignored\n");
  expect_event(4, Status::Pass, running(p3));
}

TEST_F(HaproxyProcessTest, MissingPidfileFailsThenCreatedPasses) {
  start(pidfile_);
  expect_event(0, Status::Fail, "pidfile " + pidfile_.string() + ": No such file or directory");
  const pid_t p = child();
  write_atomic(pidfile_, std::to_string(p));  // no trailing newline
  expect_event(1, Status::Pass, running(p));
}

TEST_F(HaproxyProcessTest, MissingDirectoryFallsBackToTimer) {
  const fs::path sub = dir_ / "run";
  const fs::path pidfile = sub / "haproxy.pid";
  start(pidfile);
  expect_event(0, Status::Fail, "pidfile " + pidfile.string() + ": No such file or directory");
  const pid_t p = child();
  fs::create_directory(sub);
  write_file(pidfile, std::to_string(p) + "\n");
  expect_event(1, Status::Pass, running(p));  // within ~500 ms (timer)
  const auto t0 = Clock::now();
  ::kill(p, SIGKILL);
  auto ev = expect_event(2, Status::Fail, exited(p));
  ASSERT_TRUE(ev);
  EXPECT_LT(ev->at - t0, 1s);
}

TEST_F(HaproxyProcessTest, UnparsablePidfileFails) {
  write_file(pidfile_, "not-a-pid\n");
  start(pidfile_);
  expect_event(0, Status::Fail, "pidfile " + pidfile_.string() + ": no PID on first line");
}

TEST_F(HaproxyProcessTest, EmptyPidfileFails) {
  write_file(pidfile_, "");
  start(pidfile_);
  expect_event(0, Status::Fail, "pidfile " + pidfile_.string() + ": no PID on first line");
}

TEST_F(HaproxyProcessTest, DeadPidFails) {
  const pid_t p = child();
  ::kill(p, SIGKILL);
  reap(p);
  write_file(pidfile_, std::to_string(p) + "\n");
  start(pidfile_);
  expect_event(0, Status::Fail,
               "pid " + std::to_string(p) + " in " + pidfile_.string() + " is not running");
}

TEST_F(HaproxyProcessTest, ZombieIsNotAlive) {
  const pid_t p = child();
  ::kill(p, SIGKILL);  // not reaped: stays a zombie
  for (int i = 0; i < 200 && proc_state(p) != 'Z'; ++i) std::this_thread::sleep_for(5ms);
  ASSERT_EQ(proc_state(p), 'Z');
  write_file(pidfile_, std::to_string(p) + "\n");
  start(pidfile_);
  expect_event(0, Status::Fail,
               "pid " + std::to_string(p) + " in " + pidfile_.string() + " is not running");
}

TEST_F(HaproxyProcessTest, PidfileRemovedWhileRunningKeepsWatchingThePid) {
  const pid_t p = child();
  write_file(pidfile_, std::to_string(p) + "\n");
  start(pidfile_);
  expect_event(0, Status::Pass, running(p));
  fs::remove(pidfile_);
  write_file(pidfile_, "");  // half-written pidfile: ignored while p is alive
  std::this_thread::sleep_for(700ms);
  EXPECT_EQ(rec_.size(), 1u);
  ::kill(p, SIGKILL);
  expect_event(1, Status::Fail, exited(p));
}

TEST_F(HaproxyProcessTest, PidfileNamingAnotherLiveProcessSwitches) {
  const pid_t p1 = child();
  const pid_t p2 = child();
  write_file(pidfile_, std::to_string(p1) + "\n");
  start(pidfile_);
  expect_event(0, Status::Pass, running(p1));
  write_atomic(pidfile_, std::to_string(p2) + "\n");
  expect_event(1, Status::Pass, running(p2));
  ::kill(p1, SIGKILL);  // no longer ours
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(rec_.size(), 2u);
  ::kill(p2, SIGKILL);
  expect_event(2, Status::Fail, exited(p2));
}

TEST_F(HaproxyProcessTest, RunReportsCurrentState) {
  const pid_t p = child();
  write_file(pidfile_, std::to_string(p) + "\n");
  config::CheckSpec spec;
  spec.type = "haproxy-process";
  spec.pidfile = pidfile_.string();
  probe_ = make_probe(loop_.io(), spec);
  loop_.sync([&] { probe_->run(rec_.fn()); });
  expect_event(0, Status::Pass, running(p));
}

TEST_F(HaproxyProcessTest, NoCallbackAfterCancel) {
  const pid_t p = child();
  write_file(pidfile_, std::to_string(p) + "\n");
  start(pidfile_);
  expect_event(0, Status::Pass, running(p));
  loop_.sync([&] { probe_->cancel(); });
  ::kill(p, SIGKILL);
  write_atomic(pidfile_, "1\n");
  std::this_thread::sleep_for(700ms);
  EXPECT_EQ(rec_.size(), 1u);
}

}  // namespace
}  // namespace beacon::health
