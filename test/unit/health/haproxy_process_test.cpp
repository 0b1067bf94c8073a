// `haproxy-process` check (pidfile + pidfd + inotify). Uses `sleep` children
// (process_name = "sleep") instead of HAProxy, and python3 children with an
// HAProxy-style `-sf PID` command line for the reload cases. The io_context
// runs on its own thread and every wait is bounded.
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

// python3 sleeping 30 s with extra argv (e.g. {"-sf", "1234"}): its comm is
// "python3" and its command line carries the arguments, like a reloading
// HAProxy's.
pid_t spawn_python(const std::vector<std::string>& extra) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    std::vector<std::string> args = {"python3", "-c", "import time; time.sleep(30)"};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    // The absolute path: a python3 found in PATH may be a wrapper script
    // (pyenv shims) whose name and command line change as it execs.
    ::execv("/usr/bin/python3", argv.data());
    ::_exit(127);
  }
  return pid;
}

// Waits until the child has exec'd `comm` (fork + exec take a moment).
bool wait_comm(pid_t pid, const std::string& comm) {
  for (int i = 0; i < 400; ++i) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/comm");
    std::string line;
    if (std::getline(in, line) && line == comm) return true;
    std::this_thread::sleep_for(5ms);
  }
  return false;
}

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
    // Named `sleep` only once it has exec'd; before, it is a copy of this test.
    EXPECT_TRUE(wait_comm(p, "sleep"));
    return p;
  }
  void reap(pid_t p) {
    ::waitpid(p, nullptr, 0);
    std::erase(children_, p);
  }
  pid_t python(const std::vector<std::string>& extra = {}) {
    const pid_t p = spawn_python(extra);
    EXPECT_GT(p, 0);
    children_.push_back(p);
    EXPECT_TRUE(wait_comm(p, "python3"));
    return p;
  }
  void start(const fs::path& pidfile, const std::string& process_name = "sleep",
             std::chrono::milliseconds reload_grace = 200ms) {
    config::CheckSpec spec;
    spec.name = "haproxy-proc";
    spec.type = config::CheckType::HaproxyProcess;
    spec.pidfile = pidfile.string();
    spec.process_name = process_name;
    spec.reload_grace = reload_grace;
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
  spec.type = config::CheckType::HaproxyProcess;
  spec.pidfile = pidfile_.string();
  spec.process_name = "sleep";
  probe_ = make_probe(loop_.io(), spec);
  loop_.sync([&] { probe_->run(rec_.fn()); });
  expect_event(0, Status::Pass, running(p));
}

TEST_F(HaproxyProcessTest, StalePidfileNamingAnotherProgramFails) {
  // The PID was reused by some other program: not HAProxy, not running.
  const pid_t p = child();  // `sleep`
  write_file(pidfile_, std::to_string(p) + "\n");
  start(pidfile_, "haproxy");
  auto ev = rec_.wait(0, 3s);
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->result.status, Status::Fail);
  const std::string want = "pid " + std::to_string(p) + " in " + pidfile_.string() +
                           " is not haproxy (comm \"sleep\", exe ";
  EXPECT_EQ(ev->result.reason.substr(0, want.size()), want) << ev->result.reason;
  // The same for a one-shot run.
  config::CheckSpec spec;
  spec.type = config::CheckType::HaproxyProcess;
  spec.pidfile = pidfile_.string();
  auto once = make_probe(loop_.io(), spec);
  Recorder rec;
  loop_.sync([&] { once->run(rec.fn()); });
  ev = rec.wait(0, 3s);
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->result.status, Status::Fail);
  EXPECT_EQ(ev->result.reason.substr(0, want.size()), want) << ev->result.reason;
  loop_.sync([&] { once.reset(); });
  // A program really named haproxy (a copy of sleep) is adopted at once.
  const fs::path fake = dir_ / "haproxy";
  fs::copy_file(fs::canonical("/bin/sleep"), fake);
  fs::permissions(fake, fs::perms(0755));
  const pid_t h = ::fork();
  if (h == 0) {
    ::execl(fake.c_str(), "haproxy", "30", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ASSERT_GT(h, 0);
  children_.push_back(h);
  ASSERT_TRUE(wait_comm(h, "haproxy"));
  write_atomic(pidfile_, std::to_string(h) + "\n");
  expect_event(1, Status::Pass, running(h));
}

// Daemon-mode seamless reload, `haproxy -D -p FILE -sf OLD`, when the old
// process exits before the new one has written the pidfile: no Fail at all.
TEST_F(HaproxyProcessTest, ReloadWithSuccessorNotYetInPidfileNeverFails) {
  const pid_t old = python();
  write_file(pidfile_, std::to_string(old) + "\n");
  start(pidfile_, "python3");
  expect_event(0, Status::Pass, running(old));
  const pid_t next = python({"-f", "/etc/haproxy/haproxy.cfg", "-sf", std::to_string(old)});
  ASSERT_EQ(::kill(old, SIGTERM), 0);
  expect_event(1, Status::Pass,
               exited(old) + "; reload in progress (successor pid " + std::to_string(next) + ")");
  reap(old);
  std::this_thread::sleep_for(50ms);
  write_atomic(pidfile_, std::to_string(next) + "\n");
  expect_event(2, Status::Pass, running(next));
  // And the successor is watched like any other: its death is reported at once.
  const auto t0 = Clock::now();
  ASSERT_EQ(::kill(next, SIGKILL), 0);
  auto ev = expect_event(3, Status::Fail, exited(next));
  ASSERT_TRUE(ev);
  std::printf("[latency] kill (no successor) -> Fail  %8.3f ms\n", ms_since(t0, ev->at));
  EXPECT_LT(ev->at - t0, 1s);
  EXPECT_EQ(rec_.size(), 4u);  // the three Pass reports above and this one Fail
}

// The new process wrote the pidfile before the old one exited: a switch.
TEST_F(HaproxyProcessTest, ReloadWithPidfileAlreadyRewrittenSwitchesWithoutFail) {
  const pid_t old = python();
  write_file(pidfile_, std::to_string(old) + "\n");
  start(pidfile_, "python3");
  expect_event(0, Status::Pass, running(old));
  const pid_t next = python({"-sf", std::to_string(old)});
  write_atomic(pidfile_, std::to_string(next) + "\n");
  expect_event(1, Status::Pass, running(next));
  ASSERT_EQ(::kill(old, SIGTERM), 0);
  reap(old);
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(rec_.size(), 2u);
}

// A successor that never makes it into the pidfile: the exit becomes a
// failure once reload_grace has passed, not before.
TEST_F(HaproxyProcessTest, SuccessorNeverInPidfileFailsAfterTheGrace) {
  const pid_t old = python();
  write_file(pidfile_, std::to_string(old) + "\n");
  start(pidfile_, "python3", 150ms);
  expect_event(0, Status::Pass, running(old));
  python({"-st", "999999", std::to_string(old)});
  const auto t0 = Clock::now();
  ASSERT_EQ(::kill(old, SIGKILL), 0);
  auto ev = rec_.wait(1, 3s);
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->result.status, Status::Pass) << ev->result.reason;  // reload in progress
  ev = expect_event(2, Status::Fail,
                    exited(old) + "; no successor named in " + pidfile_.string() +
                        " within 150ms (reload_grace)");
  ASSERT_TRUE(ev);
  EXPECT_GE(ev->at - t0, 150ms);
  EXPECT_LT(ev->at - t0, 1s);
}

// A process of another name handing over does not count as a successor, nor
// does one handing over from some other PID: the death is reported at once.
TEST_F(HaproxyProcessTest, OnlyAHandOverFromThisPidCountsAsAReload) {
  const pid_t old = python();
  write_file(pidfile_, std::to_string(old) + "\n");
  start(pidfile_, "python3");
  expect_event(0, Status::Pass, running(old));
  python({"-sf", std::to_string(old + 100000)});
  const auto t0 = Clock::now();
  ASSERT_EQ(::kill(old, SIGKILL), 0);
  auto ev = expect_event(1, Status::Fail, exited(old));
  ASSERT_TRUE(ev);
  EXPECT_LT(ev->at - t0, 1s);
}

// A daemon that writes its PID but closes the file only later (or never)
// must be adopted on the write, so that it dying right after start is seen
// at once and not at the 500 ms fallback re-read.
TEST_F(HaproxyProcessTest, PidWrittenIntoAFileStillOpenIsAdoptedOnTheWrite) {
  start(pidfile_);
  expect_event(0, Status::Fail, "pidfile " + pidfile_.string() + ": No such file or directory");
  const pid_t p = child();
  const int fd = ::open(pidfile_.c_str(), O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  std::this_thread::sleep_for(20ms);  // IN_CREATE seen while the file is still empty
  const std::string text = std::to_string(p) + "\n";
  const auto t0 = Clock::now();
  ASSERT_EQ(::write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  // (Before it, the empty file may be reported: "no PID on first line".)
  std::optional<Event> ev;
  for (std::size_t i = 1; i < 4; ++i) {
    ev = rec_.wait(i, 3s);
    if (!ev || ev->result.status == Status::Pass) break;
  }
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->result.reason, running(p));
  std::printf("[latency] pid written (file open) -> Pass %7.3f ms\n", ms_since(t0, ev->at));
  EXPECT_LT(ev->at - t0, 250ms);  // well before the 500 ms fallback
  ::close(fd);
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
