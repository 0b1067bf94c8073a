// sd::Notifier against real AF_UNIX datagram sockets (a path and an abstract
// name), the environment rules (NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID),
// and the pure parts of the daemon's systemd wiring (STATUS= line, watchdog
// rule).
#include "beacon/app/sd_notify.hpp"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <random>
#include <string>

#include "beacon/app/systemd_wiring.hpp"

namespace beacon::app {
namespace {

using namespace std::chrono_literals;

// A bound datagram socket standing in for systemd's notify socket.
class Receiver {
 public:
  // `name`: a path, or '@' + abstract name.
  explicit Receiver(std::string name) : name_(std::move(name)) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    EXPECT_GE(fd_, 0) << std::strerror(errno);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::string raw = name_;
    if (raw.front() == '@') raw.front() = '\0';
    std::memcpy(sa.sun_path, raw.data(), raw.size());
    const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + raw.size() +
                                            (raw.front() == '/' ? 1 : 0));
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&sa), len), 0) << std::strerror(errno);
  }
  ~Receiver() {
    ::close(fd_);
    if (name_.front() == '/') ::unlink(name_.c_str());
  }
  const std::string& name() const { return name_; }

  // The next datagram, or nullopt after `timeout`.
  std::optional<std::string> recv(std::chrono::milliseconds timeout = 1000ms) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return std::nullopt;
    char buf[4096];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n < 0) return std::nullopt;
    return std::string(buf, static_cast<std::size_t>(n));
  }

 private:
  std::string name_;
  int fd_ = -1;
};

std::string unique_suffix() {
  return std::to_string(::getpid()) + "-" + std::to_string(std::random_device{}());
}

std::string temp_path() {
  return (std::filesystem::temp_directory_path() / ("beacon-notify-" + unique_suffix())).string();
}

TEST(SdNotify, SendsEveryMessageToAPathSocket) {
  Receiver rx(temp_path());
  sd::Notifier n(rx.name());
  ASSERT_TRUE(n.enabled()) << n.error();
  EXPECT_TRUE(n.notify_ready());
  EXPECT_EQ(rx.recv(), "READY=1");
  EXPECT_TRUE(n.notify_status("3/3 sessions Up, group web healthy"));
  EXPECT_EQ(rx.recv(), "STATUS=3/3 sessions Up, group web healthy");
  EXPECT_TRUE(n.notify_ready("1/1 sessions Up"));
  EXPECT_EQ(rx.recv(), "READY=1\nSTATUS=1/1 sessions Up");
  EXPECT_TRUE(n.notify_watchdog());
  EXPECT_EQ(rx.recv(), "WATCHDOG=1");
  EXPECT_TRUE(n.notify_stopping());
  EXPECT_EQ(rx.recv(), "STOPPING=1");
  EXPECT_TRUE(n.send("X=1\nY=2"));
  EXPECT_EQ(rx.recv(), "X=1\nY=2");
}

TEST(SdNotify, SendsToAnAbstractName) {
  Receiver rx("@beacon-notify-test-" + unique_suffix());
  sd::Notifier n(rx.name());
  ASSERT_TRUE(n.enabled()) << n.error();
  EXPECT_TRUE(n.notify_watchdog());
  EXPECT_EQ(rx.recv(), "WATCHDOG=1");
}

TEST(SdNotify, ReloadingCarriesTheMonotonicClock) {
  Receiver rx(temp_path());
  sd::Notifier n(rx.name());
  timespec before{};
  ::clock_gettime(CLOCK_MONOTONIC, &before);
  ASSERT_TRUE(n.notify_reloading());
  timespec after{};
  ::clock_gettime(CLOCK_MONOTONIC, &after);
  const auto msg = rx.recv();
  ASSERT_TRUE(msg);
  const std::string prefix = "RELOADING=1\nMONOTONIC_USEC=";
  ASSERT_EQ(msg->rfind(prefix, 0), 0u) << *msg;
  const std::string digits = msg->substr(prefix.size());
  ASSERT_FALSE(digits.empty());
  EXPECT_EQ(digits.find_first_not_of("0123456789"), std::string::npos) << digits;
  const auto us = std::stoull(digits);
  auto to_us = [](const timespec& t) {
    return static_cast<unsigned long long>(t.tv_sec) * 1'000'000ull +
           static_cast<unsigned long long>(t.tv_nsec) / 1'000ull;
  };
  EXPECT_GE(us, to_us(before));
  EXPECT_LE(us, to_us(after));
  const std::string field = sd::monotonic_usec_field();
  EXPECT_EQ(field.rfind("MONOTONIC_USEC=", 0), 0u);
}

TEST(SdNotify, StatusCannotInjectAnotherAssignment) {
  Receiver rx(temp_path());
  sd::Notifier n(rx.name());
  EXPECT_TRUE(n.notify_status("bad\nREADY=1\ttab\x7f"));
  EXPECT_EQ(rx.recv(), "STATUS=bad READY=1 tab ");
}

TEST(SdNotify, DisabledWithoutAnAddressAndNeverThrows) {
  sd::Notifier none;
  EXPECT_FALSE(none.enabled());
  EXPECT_FALSE(none.notify_ready());
  sd::Notifier empty("");
  EXPECT_FALSE(empty.enabled());
  EXPECT_TRUE(empty.error().empty());

  sd::Notifier relative("run/notify");
  EXPECT_FALSE(relative.enabled());
  EXPECT_NE(relative.error().find("not an absolute path"), std::string::npos) << relative.error();
  sd::Notifier vsock("vsock:2:1234");
  EXPECT_FALSE(vsock.enabled());
  sd::Notifier long_path("/" + std::string(200, 'x'));
  EXPECT_FALSE(long_path.enabled());
  EXPECT_NE(long_path.error().find("too long"), std::string::npos);
}

TEST(SdNotify, NobodyListeningIsReportedNotFatal) {
  sd::Notifier n(temp_path());  // nothing bound there
  ASSERT_TRUE(n.enabled());
  EXPECT_FALSE(n.notify_ready());
  EXPECT_NE(n.last_errno(), 0);
}

TEST(SdNotify, NeverBlocksOnAFullSocket) {
  Receiver rx(temp_path());  // never read until the end
  sd::Notifier n(rx.name());
  const auto t0 = std::chrono::steady_clock::now();
  int refused = 0;
  for (int i = 0; i < 5000; ++i) {
    if (!n.notify_watchdog()) ++refused;
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
  EXPECT_GT(refused, 0) << "the receive queue never filled up";
  EXPECT_EQ(n.last_errno(), EAGAIN);
  EXPECT_EQ(rx.recv(), "WATCHDOG=1");
}

TEST(SdNotify, MoveKeepsTheSocket) {
  Receiver rx(temp_path());
  sd::Notifier a(rx.name());
  sd::Notifier b(std::move(a));
  EXPECT_FALSE(a.enabled());  // NOLINT(bugprone-use-after-move): moved-from state is specified
  EXPECT_TRUE(b.notify_ready());
  EXPECT_EQ(rx.recv(), "READY=1");
  sd::Notifier c;
  c = std::move(b);
  EXPECT_TRUE(c.notify_stopping());
  EXPECT_EQ(rx.recv(), "STOPPING=1");
}

TEST(SdWatchdog, ParsesAsSystemdDoes) {
  const pid_t self = 4242;
  EXPECT_EQ(sd::parse_watchdog("10000000", nullptr, self), std::chrono::microseconds(10'000'000));
  EXPECT_EQ(sd::parse_watchdog("500000", "4242", self), std::chrono::microseconds(500'000));
  EXPECT_EQ(sd::parse_watchdog("500000", "4243", self), std::nullopt);  // for another process
  EXPECT_EQ(sd::parse_watchdog("500000", "x", self), std::nullopt);
  EXPECT_EQ(sd::parse_watchdog("0", nullptr, self), std::nullopt);  // 0: no watchdog
  EXPECT_EQ(sd::parse_watchdog(nullptr, nullptr, self), std::nullopt);
  EXPECT_EQ(sd::parse_watchdog("", nullptr, self), std::nullopt);
  EXPECT_EQ(sd::parse_watchdog("10s", nullptr, self), std::nullopt);
  EXPECT_EQ(sd::parse_watchdog("-5", nullptr, self), std::nullopt);
  EXPECT_EQ(sd::parse_watchdog("99999999999999999999999", nullptr, self), std::nullopt);
}

TEST(SdWatchdog, EnvironmentIsReadAndRemoved) {
  ::setenv("NOTIFY_SOCKET", "@bfd-beacon-test", 1);
  ::setenv("WATCHDOG_USEC", "2000000", 1);
  ::setenv("WATCHDOG_PID", std::to_string(::getpid()).c_str(), 1);
  const sd::Environment kept = sd::read_environment(false, ::getpid());
  EXPECT_EQ(kept.notify_socket, "@bfd-beacon-test");
  EXPECT_EQ(kept.watchdog, std::chrono::microseconds(2'000'000));
  EXPECT_NE(std::getenv("NOTIFY_SOCKET"), nullptr);

  const sd::Environment taken = sd::read_environment(true, ::getpid());
  EXPECT_EQ(taken.notify_socket, "@bfd-beacon-test");
  EXPECT_EQ(std::getenv("NOTIFY_SOCKET"), nullptr);
  EXPECT_EQ(std::getenv("WATCHDOG_USEC"), nullptr);
  EXPECT_EQ(std::getenv("WATCHDOG_PID"), nullptr);

  const sd::Environment none = sd::read_environment(true, ::getpid());
  EXPECT_TRUE(none.notify_socket.empty());
  EXPECT_EQ(none.watchdog, std::nullopt);
}

TEST(SdWatchdog, KeepAliveOnlyWhileBothLoopsAnswer) {
  const core::TimePoint now = core::TimePoint{} + 100s;
  const core::Duration bound = 250ms;
  EXPECT_EQ(loops_dead(now, now - 100ms, now - 10ms, bound), "");
  EXPECT_EQ(loops_dead(now, now - 250ms, now - 250ms, bound), "");
  EXPECT_EQ(loops_dead(now, now - 1200ms, now - 10ms, bound), "ops loop silent for 1.20 s");
  EXPECT_EQ(loops_dead(now, now - 10ms, now - 3s, bound), "engine loop silent for 3.00 s");
  EXPECT_EQ(loops_dead(now, std::nullopt, std::nullopt, bound),
            "ops loop not answering yet, engine loop not answering yet");
}

engine::SessionSnapshot session(core::wire::State st) {
  engine::SessionSnapshot s;
  s.state = st;
  return s;
}

health::GroupStatus group(std::string name, health::Verdict v, std::string reason = "",
                          std::vector<std::string> checks = {"c"}) {
  health::GroupStatus g;
  g.name = std::move(name);
  g.decision.verdict = v;
  g.decision.reason = std::move(reason);
  g.checks = std::move(checks);
  return g;
}

TEST(SdStatus, OneLineForOperators) {
  using core::wire::State;
  const std::vector<engine::SessionSnapshot> three{session(State::Up), session(State::Up),
                                                   session(State::Up)};
  EXPECT_EQ(status_line(three, {group("web", health::Verdict::Healthy)}),
            "3/3 sessions Up, group web healthy");
  EXPECT_EQ(status_line({session(State::Up), session(State::Down)}, {}), "1/2 sessions Up");
  EXPECT_EQ(status_line({session(State::Down)},
                        {group("web", health::Verdict::Unhealthy, "check haproxy: HTTP 503")}),
            "0/1 sessions Up, group web unhealthy (check haproxy: HTTP 503)");
  EXPECT_EQ(status_line({}, {group("web", health::Verdict::Unknown, "waiting")}),
            "0/0 sessions Up, group web waiting for first verdict");
  // A group without checks is not health-managed: not listed.
  EXPECT_EQ(status_line({}, {group("plain", health::Verdict::Healthy, "", {})}), "0/0 sessions Up");
  // Long reasons are cut.
  const std::string line =
      status_line({}, {group("web", health::Verdict::Maintenance, std::string(500, 'r'))});
  EXPECT_LT(line.size(), 120u);
  EXPECT_NE(line.find("...)"), std::string::npos) << line;
}

TEST(SdStatus, ManyGroupsAreCounted) {
  std::vector<health::GroupStatus> gs;
  for (int i = 0; i < 4; ++i)
    gs.push_back(group("g" + std::to_string(i), health::Verdict::Healthy));
  gs.push_back(group("db", health::Verdict::Unhealthy, "check pg: down"));
  gs.push_back(group("api", health::Verdict::Maintenance, "maintenance: file"));
  EXPECT_EQ(status_line({}, gs),
            "0/0 sessions Up, groups: 4 healthy, 1 unhealthy (db), 1 maintenance (api)");
  for (int i = 0; i < 5; ++i)
    gs.push_back(group("u" + std::to_string(i), health::Verdict::Unknown));
  EXPECT_LE(status_line({}, gs).size(), 200u);
  EXPECT_NE(status_line({}, gs).find("5 waiting (u0, u1, u2, ...)"), std::string::npos)
      << status_line({}, gs);
}

TEST(SdStatus, ReadyOnceEveryGroupHasAVerdict) {
  EXPECT_TRUE(first_verdicts_in({}));
  EXPECT_FALSE(first_verdicts_in(
      {group("a", health::Verdict::Healthy), group("b", health::Verdict::Unknown)}));
  EXPECT_TRUE(first_verdicts_in(
      {group("a", health::Verdict::Unhealthy), group("b", health::Verdict::Maintenance)}));
}

}  // namespace
}  // namespace beacon::app
