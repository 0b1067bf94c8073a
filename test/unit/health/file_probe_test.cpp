// `file` check (maintenance marker, inotify). Real file system in a temp dir;
// the io_context runs on its own thread and every wait is bounded.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <thread>

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

class FileProbeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/eprobe-file-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    marker_ = dir_ / "maintenance";
  }
  void TearDown() override {
    if (probe_) loop_.sync([&] { probe_.reset(); });
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  void start(const fs::path& path) {
    config::CheckSpec spec;
    spec.name = "maint";
    spec.type = config::CheckType::File;
    spec.path = path.string();
    probe_ = make_probe(loop_.io(), spec);
    ASSERT_TRUE(probe_->event_driven());
    loop_.sync([&] { probe_->watch(rec_.fn()); });
  }
  static void touch(const fs::path& p) {
    const int fd = ::open(p.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0);
    ::close(fd);
  }
  // Performs `action` and expects event number `index` with `status`; prints latency.
  Event expect_change(std::size_t index, const char* what, std::function<void()> action,
                      Status status) {
    const auto t0 = Clock::now();
    action();
    auto ev = rec_.wait(index);
    EXPECT_TRUE(ev.has_value()) << what << ": no event";
    if (!ev) return Event{};
    EXPECT_EQ(ev->result.status, status) << what << ": " << ev->result.reason;
    std::printf("[latency] file %-24s %8.3f ms  (%s)\n", what, ms_since(t0, ev->at),
                ev->result.reason.c_str());
    EXPECT_LT(ev->at - t0, 1s) << what;
    return *ev;
  }

  Loop loop_;
  Recorder rec_;
  std::unique_ptr<Probe> probe_;
  fs::path dir_, marker_;
};

TEST_F(FileProbeTest, AbsentAtStartPassesThenCreateDeleteAreImmediate) {
  start(marker_);
  auto first = rec_.wait(0);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->result.status, Status::Pass);
  EXPECT_EQ(first->result.reason, "maintenance file " + marker_.string() + " absent");

  auto ev = expect_change(
      1, "create", [&] { touch(marker_); }, Status::Maintenance);
  EXPECT_EQ(ev.result.reason, "maintenance file " + marker_.string() + " present");
  expect_change(
      2, "delete", [&] { fs::remove(marker_); }, Status::Pass);
}

TEST_F(FileProbeTest, PresentAtStartIsMaintenance) {
  touch(marker_);
  start(marker_);
  auto first = rec_.wait(0);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->result.status, Status::Maintenance);
}

TEST_F(FileProbeTest, RenameInAndOutAndOtherNamesIgnored) {
  start(marker_);
  ASSERT_TRUE(rec_.wait(0));
  const fs::path other = dir_ / "maintenance.tmp";
  touch(other);  // another name in the same dir: no report
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(rec_.size(), 1u);
  expect_change(
      1, "rename-in", [&] { fs::rename(other, marker_); }, Status::Maintenance);
  // Rewriting the marker in place is not a change of state: no report.
  touch(marker_);
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(rec_.size(), 2u);
  expect_change(
      2, "rename-out", [&] { fs::rename(marker_, dir_ / "elsewhere"); }, Status::Pass);
}

TEST_F(FileProbeTest, MissingDirectoryPollsUntilCreatedThenUsesInotify) {
  const fs::path sub = dir_ / "sub";
  const fs::path marker = sub / "maintenance";
  start(marker);
  auto first = rec_.wait(0);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->result.status, Status::Pass);
  EXPECT_NE(first->result.reason.find("directory " + sub.string() + " missing; polling"),
            std::string::npos)
      << first->result.reason;

  // Directory appears: within the 1 s poll the reason drops "polling".
  auto t0 = Clock::now();
  fs::create_directory(sub);
  auto ev = rec_.wait(1, 3s);
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->result.status, Status::Pass);
  EXPECT_EQ(ev->result.reason, "maintenance file " + marker.string() + " absent");
  std::printf("[latency] file %-24s %8.3f ms  (poll, <= 1 s expected)\n", "dir-created",
              ms_since(t0, ev->at));
  // Now inotify: immediate.
  expect_change(
      2, "create-after-dir", [&] { touch(marker); }, Status::Maintenance);
  expect_change(
      3, "delete-after-dir", [&] { fs::remove(marker); }, Status::Pass);

  // Directory removed again: back to polling (still Pass, reason says so).
  fs::remove(sub);
  ev = rec_.wait(4, 3s);
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->result.status, Status::Pass);
  EXPECT_NE(ev->result.reason.find("polling"), std::string::npos) << ev->result.reason;

  // Directory and marker created together: Maintenance (no lost marker).
  fs::create_directory(sub);
  touch(marker);
  ev = rec_.wait(5, 3s);
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->result.status, Status::Maintenance) << ev->result.reason;
}

TEST_F(FileProbeTest, DirectoryRenamedAwayIsFollowedByPath) {
  const fs::path sub = dir_ / "sub";
  fs::create_directory(sub);
  const fs::path marker = sub / "maintenance";
  start(marker);
  ASSERT_TRUE(rec_.wait(0));
  fs::rename(sub, dir_ / "old");
  touch(dir_ / "old" / "maintenance");  // not our path any more
  fs::create_directory(sub);
  // The directory may have been missing for an instant (then the 1 s poll
  // re-attaches the watch): give that poll time before measuring.
  std::this_thread::sleep_for(1300ms);
  expect_change(
      rec_.size(), "create-in-new-dir", [&] { touch(marker); }, Status::Maintenance);
}

TEST_F(FileProbeTest, RunReportsCurrentStateOnce) {
  config::CheckSpec spec;
  spec.type = config::CheckType::File;
  spec.path = marker_.string();
  probe_ = make_probe(loop_.io(), spec);
  loop_.sync([&] { probe_->run(rec_.fn()); });
  auto ev = rec_.wait(0);
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->result.status, Status::Pass);
  touch(marker_);
  loop_.sync([&] { probe_->run(rec_.fn()); });
  ev = rec_.wait(1);
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->result.status, Status::Maintenance);
}

TEST_F(FileProbeTest, NoCallbackAfterCancel) {
  start(marker_);
  ASSERT_TRUE(rec_.wait(0));
  loop_.sync([&] { probe_->cancel(); });
  touch(marker_);
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(rec_.size(), 1u);
}

TEST_F(FileProbeTest, EmptyPathFailsNeverPasses) {
  start(fs::path());
  auto ev = rec_.wait(0);
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->result.status, Status::Fail);
  EXPECT_FALSE(ev->result.reason.empty());
}

}  // namespace
}  // namespace beacon::health
