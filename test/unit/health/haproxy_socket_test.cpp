// haproxy-socket probe against a real HAProxy 2.6 Runtime API (stats socket)
// started by the test, plus a canned UNIX server for answers HAProxy is hard
// to provoke (Stopping: 1, garbage). Generous time bounds only.
#include <gtest/gtest.h>

#include "../../../src/health/probes_impl.hpp"
#include "haproxy_lab.hpp"

namespace beacon::health {
namespace {

using namespace std::chrono_literals;
using testing::HaproxyLab;
using testing::run_once;
using testing::run_until;
using testing::TcpListener;

config::CheckSpec socket_spec(const std::string& path, const std::string& backend = "",
                              std::uint32_t min_up = 1) {
  config::CheckSpec s;
  s.name = "haproxy-stats";
  s.type = config::CheckType::HaproxySocket;
  s.socket = path;
  s.backend = backend;
  s.min_servers_up = min_up;
  s.interval = 500ms;
  s.timeout = 1000ms;
  return s;
}

// UNIX server answering every connection with `answer` (or nothing, when
// silent) and closing; bounded by the test's lifetime.
class CannedServer {
 public:
  CannedServer(std::string path, std::string answer, bool silent = false)
      : path_(std::move(path)), answer_(std::move(answer)), silent_(silent) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path_.c_str());
    ::unlink(path_.c_str());
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, 8) != 0) {
      throw std::runtime_error("cannot listen on " + path_);
    }
    if (!silent_) {
      thread_ = std::thread([this] {
        while (!stop_) {
          pollfd p{fd_, POLLIN, 0};
          if (::poll(&p, 1, 20) <= 0) continue;
          int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
          if (c < 0) continue;
          ++connections_;
          char buf[256];
          (void)::read(c, buf, sizeof buf);
          (void)::write(c, answer_.data(), answer_.size());
          ::close(c);
        }
      });
    }
  }
  int connections() const { return connections_; }
  ~CannedServer() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    ::close(fd_);
    ::unlink(path_.c_str());
  }

 private:
  std::string path_, answer_;
  bool silent_;
  int fd_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::thread thread_;
};

class HaproxySocketTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access("/usr/sbin/haproxy", X_OK) != 0) GTEST_SKIP() << "haproxy not installed";
  }
  void start(bool master_worker = false) {
    std::string error;
    ASSERT_TRUE(lab_.start(master_worker, error)) << error;
  }
  boost::asio::io_context io_;
  HaproxyLab lab_;
};

TEST_F(HaproxySocketTest, PassesAndRecordsCurrConns) {
  start();
  auto probe = make_haproxy_socket_probe(io_, socket_spec(lab_.socket_path()));
  auto r = run_once(io_, *probe);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, Status::Pass) << r->reason;
  ASSERT_TRUE(r->current_connections.has_value());
  EXPECT_LT(*r->current_connections, 100u);
  EXPECT_NE(r->reason.find("pid " + std::to_string(lab_.pid())), std::string::npos) << r->reason;
  EXPECT_FALSE(r->reloaded);
  EXPECT_GT(r->latency.count(), 0);
  std::printf("haproxy-socket show info latency %lldus\n",
              static_cast<long long>(r->latency.count()));
  auto again = run_once(io_, *probe);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, Status::Pass);
  EXPECT_FALSE(again->reloaded);
}

TEST_F(HaproxySocketTest, BackendWithTooFewServersUpFails) {
  start();  // no server listening: s1 and s2 both DOWN
  auto probe = make_haproxy_socket_probe(io_, socket_spec(lab_.socket_path(), "be", 1));
  auto r = run_until(io_, *probe, [](const Result& x) {
    return x.reason == "backend be: 0 of 2 servers UP (need 1)";
  });
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, Status::Fail);
  EXPECT_EQ(r->reason, "backend be: 0 of 2 servers UP (need 1)");
  EXPECT_TRUE(r->current_connections.has_value());  // show info still recorded
}

TEST_F(HaproxySocketTest, BackendServerCountFollowsServerState) {
  start();
  TcpListener server(lab_.server_port(), true);
  auto one = make_haproxy_socket_probe(io_, socket_spec(lab_.socket_path(), "be", 1));
  auto r = run_until(io_, *one, [](const Result& x) { return x.status == Status::Pass; });
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, Status::Pass) << r->reason;
  EXPECT_EQ(r->reason.rfind("backend be: 1 of 2 servers UP", 0), 0u) << r->reason;
  std::printf("haproxy-socket show info + show stat latency %lldus\n",
              static_cast<long long>(r->latency.count()));

  auto two = make_haproxy_socket_probe(io_, socket_spec(lab_.socket_path(), "be", 2));
  r = run_once(io_, *two);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, Status::Fail);
  EXPECT_EQ(r->reason, "backend be: 1 of 2 servers UP (need 2)");
}

TEST_F(HaproxySocketTest, UnknownBackendFails) {
  start();
  for (std::string name : {"nope", "fe"}) {  // "fe" is a frontend, not a backend
    auto probe = make_haproxy_socket_probe(io_, socket_spec(lab_.socket_path(), name));
    auto r = run_once(io_, *probe);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, Status::Fail);
    EXPECT_EQ(r->reason, "backend " + name + " not found");
  }
}

TEST_F(HaproxySocketTest, InvalidBackendNameIsNotSentToHaproxy) {
  start();
  auto probe = make_haproxy_socket_probe(io_, socket_spec(lab_.socket_path(), "be;shutdown"));
  auto r = run_once(io_, *probe);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, Status::Fail);
  EXPECT_EQ(r->reason, "invalid backend name \"be;shutdown\"");
}

TEST_F(HaproxySocketTest, MissingSocketFails) {
  auto path = lab_.dir() + "/admin.sock";  // HAProxy not started
  auto probe = make_haproxy_socket_probe(io_, socket_spec(path));
  auto r = run_once(io_, *probe);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, Status::Fail);
  EXPECT_EQ(r->reason, "connect " + path + ": No such file or directory");
}

TEST_F(HaproxySocketTest, FailsWhenHaproxyStopsThenDetectsRestartAsReload) {
  start();
  auto probe = make_haproxy_socket_probe(io_, socket_spec(lab_.socket_path()));
  auto first = run_once(io_, *probe);
  ASSERT_TRUE(first && first->status == Status::Pass);
  lab_.stop();
  auto down = run_once(io_, *probe);
  ASSERT_TRUE(down);
  EXPECT_EQ(down->status, Status::Fail);
  EXPECT_EQ(down->reason.rfind("connect " + lab_.socket_path() + ": ", 0), 0u) << down->reason;
  start();
  auto back = run_once(io_, *probe);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->status, Status::Pass) << back->reason;
  EXPECT_TRUE(back->reloaded);
  EXPECT_NE(back->reason.find("reloaded"), std::string::npos) << back->reason;
  auto steady = run_once(io_, *probe);
  ASSERT_TRUE(steady);
  EXPECT_FALSE(steady->reloaded);
}

TEST_F(HaproxySocketTest, MasterWorkerReloadIsDetectedAndNotAFailure) {
  start(true);
  auto probe = make_haproxy_socket_probe(io_, socket_spec(lab_.socket_path()));
  auto first = run_once(io_, *probe);
  ASSERT_TRUE(first);
  ASSERT_EQ(first->status, Status::Pass) << first->reason;
  EXPECT_FALSE(first->reloaded);
  ASSERT_TRUE(lab_.reload()) << lab_.log();
  auto r = run_until(io_, *probe, [](const Result& x) { return x.reloaded; });
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->reloaded) << r->reason << "\n" << lab_.log();
  EXPECT_EQ(r->status, Status::Pass) << r->reason;
}

TEST(HaproxySocketProbe, StoppingWorkerFails) {
  char tmpl[] = "/tmp/beacon-hsock-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  std::string path = std::string(tmpl) + "/admin.sock";
  {
    CannedServer server(path,
                        "Name: HAProxy\nPid: 42\nStart_time_sec: 7\nCurrConns: 3\nStopping: 1\n\n");
    boost::asio::io_context io;
    auto spec = socket_spec(path);
    spec.timeout = 200ms;
    auto probe = make_haproxy_socket_probe(io, spec);
    const auto t0 = std::chrono::steady_clock::now();
    auto r = run_once(io, *probe);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, Status::Fail);
    // Retried on fresh connections within the timeout (a reload's old process
    // stops while the new one takes the socket), then reported.
    const std::string want = "haproxy is stopping (pid 42) (after ";
    EXPECT_EQ(r->reason.substr(0, want.size()), want) << r->reason;
    EXPECT_GE(server.connections(), 3) << r->reason;
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 100ms);
    EXPECT_EQ(r->current_connections, std::optional<std::uint64_t>(3));
  }
  ::rmdir(tmpl);
}

// The hand-over of a reload: for a moment the socket path has no listener
// (connect is refused); the new process binds it soon after. Retried within
// the timeout, the run passes.
TEST(HaproxySocketProbe, RefusedDuringHandOverIsRetriedWithinTheTimeout) {
  char tmpl[] = "/tmp/beacon-hsock-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string path = std::string(tmpl) + "/admin.sock";
  {
    // A socket file nobody listens on: connect() gets ECONNREFUSED.
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ::close(fd);
  }
  boost::asio::io_context io;
  auto spec = socket_spec(path);
  spec.timeout = 500ms;
  auto probe = make_haproxy_socket_probe(io, spec);
  std::unique_ptr<CannedServer> server;
  std::thread later([&] {
    std::this_thread::sleep_for(40ms);
    server = std::make_unique<CannedServer>(
        path, "Name: HAProxy\nPid: 43\nStart_time_sec: 8\nCurrConns: 0\nStopping: 0\n\n");
  });
  auto r = run_once(io, *probe);
  later.join();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, Status::Pass) << r->reason;
  EXPECT_EQ(r->reason, "pid 43, 0 connections");
  server.reset();
  // Still refused at the end of the timeout: reported with what happened.
  {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
    ::unlink(path.c_str());
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ::close(fd);
  }
  spec.timeout = 100ms;
  auto again = make_haproxy_socket_probe(io, spec);
  r = run_once(io, *again);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, Status::Fail);
  const std::string want = "connect " + path + ": Connection refused (after ";
  EXPECT_EQ(r->reason.substr(0, want.size()), want) << r->reason;
  ::unlink(path.c_str());
  ::rmdir(tmpl);
}

TEST(HaproxySocketProbe, GarbageAndSilenceFail) {
  char tmpl[] = "/tmp/beacon-hsock-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  std::string path = std::string(tmpl) + "/admin.sock";
  boost::asio::io_context io;
  {
    CannedServer server(path, "Permission denied\n\n");
    auto probe = make_haproxy_socket_probe(io, socket_spec(path));
    auto r = run_once(io, *probe);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, Status::Fail);
    EXPECT_EQ(r->reason, "unexpected answer to show info: Permission denied");
  }
  {
    CannedServer server(path, "", true);  // accepts, never answers
    auto spec = socket_spec(path);
    spec.timeout = 150ms;
    auto probe = make_haproxy_socket_probe(io, spec);
    testing::LoopWatch watch(io);
    watch.start();
    auto r = run_once(io, *probe);
    watch.stop();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, Status::Fail);
    EXPECT_EQ(r->reason, "timeout after 150ms");
    EXPECT_GE(watch.ticks(), 8);
    EXPECT_LT(watch.worst_lateness(), 100ms);
  }
  ::rmdir(tmpl);
}

}  // namespace
}  // namespace beacon::health
