// haproxy-http probe against a real HAProxy 2.6 (monitor-uri, monitor fail)
// started by the test on 127.0.0.1. Generous time bounds only.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "../../../src/health/probes_impl.hpp"
#include "haproxy_lab.hpp"

namespace beacon::health {
namespace {

using namespace std::chrono_literals;
using testing::HaproxyLab;
using testing::LoopWatch;
using testing::run_once;
using testing::run_until;
using testing::TcpListener;
using testing::to_ms;

config::CheckSpec http_spec(const std::string& url, core::Duration timeout = 1000ms) {
  config::CheckSpec s;
  s.name = "haproxy";
  s.type = config::CheckType::HaproxyHttp;
  s.url = url;
  s.timeout = timeout;
  s.interval = 200ms;
  return s;
}

bool is_pass(const Result& r) {
  return r.status == Status::Pass;
}

class HaproxyHttpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access("/usr/sbin/haproxy", X_OK) != 0) GTEST_SKIP() << "haproxy not installed";
    std::string error;
    ASSERT_TRUE(lab_.start(false, error)) << error;
  }
  boost::asio::io_context io_;
  HaproxyLab lab_;
};

TEST_F(HaproxyHttpTest, PassesWhileBackendIsUpAndCanRunRepeatedly) {
  TcpListener server(lab_.server_port(), true);
  auto probe = make_haproxy_http_probe(io_, http_spec(lab_.monitor_url()));
  auto r = run_until(io_, *probe, is_pass);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, Status::Pass) << r->reason;
  EXPECT_EQ(r->reason, "HTTP 200");
  EXPECT_GT(r->latency.count(), 0);
  EXPECT_LT(r->latency, 1000ms);
  std::vector<long> latencies_us;
  for (int i = 0; i < 5; ++i) {
    auto again = run_once(io_, *probe);
    ASSERT_TRUE(again);
    EXPECT_EQ(again->status, Status::Pass) << again->reason;
    latencies_us.push_back(static_cast<long>(again->latency.count()));
  }
  std::string text;
  for (long l : latencies_us) text += std::to_string(l) + "us ";
  std::printf("haproxy-http pass latencies: %s\n", text.c_str());
}

TEST_F(HaproxyHttpTest, Fails503WhenMonitorFailHolds) {
  auto probe = make_haproxy_http_probe(io_, http_spec(lab_.monitor_url()));
  {
    TcpListener server(lab_.server_port(), true);
    auto up = run_until(io_, *probe, is_pass);
    ASSERT_TRUE(up && up->status == Status::Pass);
  }  // server gone: nbsrv(be) drops to 0 after one failed check
  auto r = run_until(io_, *probe, [](const Result& x) { return x.status == Status::Fail; });
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, Status::Fail);
  EXPECT_EQ(r->reason, "HTTP 503");
}

TEST_F(HaproxyHttpTest, ConnectionRefusedWhenHaproxyIsStopped) {
  auto probe = make_haproxy_http_probe(io_, http_spec(lab_.monitor_url(), 150ms));
  lab_.stop();
  const auto t0 = std::chrono::steady_clock::now();
  auto r = run_once(io_, *probe);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, Status::Fail);
  // Retried within the timeout (a reload's hand-over), then reported.
  const std::string want = "connect: Connection refused (after ";
  EXPECT_EQ(r->reason.substr(0, want.size()), want) << r->reason;
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 100ms);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
}

// HAProxy gone for a moment and back (the listener changes hands during a
// reload): refused connections are retried within the timeout and the run
// passes once the new process listens.
TEST_F(HaproxyHttpTest, RefusedConnectionsAreRetriedUntilHaproxyListensAgain) {
  TcpListener server(lab_.server_port(), true);
  auto spec = http_spec(lab_.monitor_url(), 3000ms);
  ASSERT_TRUE(run_until(io_, *make_haproxy_http_probe(io_, spec), is_pass));
  lab_.stop();
  auto probe = make_haproxy_http_probe(io_, spec);
  std::string error;
  bool restarted = false;
  std::thread later([&] {
    std::this_thread::sleep_for(50ms);
    restarted = lab_.start(false, error);
  });
  auto r = run_once(io_, *probe);
  later.join();
  ASSERT_TRUE(restarted) << error;
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, Status::Pass) << r->reason;
  EXPECT_EQ(r->reason, "HTTP 200");
}

TEST_F(HaproxyHttpTest, WrongExpectStatusFails) {
  TcpListener server(lab_.server_port(), true);
  auto spec = http_spec(lab_.monitor_url());
  ASSERT_TRUE(run_until(io_, *make_haproxy_http_probe(io_, spec), is_pass));
  spec.expect_status = 204;
  auto probe = make_haproxy_http_probe(io_, spec);
  auto r = run_once(io_, *probe);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, Status::Fail);
  EXPECT_EQ(r->reason, "HTTP 200 (expected 204)");
}

TEST_F(HaproxyHttpTest, ExpectStatus503PassesWhenBackendDown) {
  auto spec = http_spec(lab_.monitor_url());
  spec.expect_status = 503;
  auto probe = make_haproxy_http_probe(io_, spec);
  auto r = run_until(io_, *probe, is_pass);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, Status::Pass) << r->reason;
  EXPECT_EQ(r->reason, "HTTP 503");
}

// Not HAProxy: a listener that accepts (backlog) but never answers.
TEST(HaproxyHttpProbe, TimesOutWithoutBlockingTheLoop) {
  boost::asio::io_context io;
  TcpListener silent(testing::pick_port(), false);
  auto probe = make_haproxy_http_probe(
      io, http_spec("http://127.0.0.1:" + std::to_string(silent.port()) + "/beacon-health", 300ms));
  LoopWatch watch(io);
  watch.start();
  auto r = run_once(io, *probe);
  watch.stop();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, Status::Fail);
  EXPECT_EQ(r->reason, "timeout after 300ms");
  EXPECT_GE(r->latency, 250ms);
  EXPECT_LT(r->latency, 2000ms);
  // The 10 ms timer kept firing while curl waited: ~30 ticks expected.
  EXPECT_GE(watch.ticks(), 15);
  EXPECT_LT(watch.worst_lateness(), 100ms);
  std::printf("timeout latency %lldms, loop ticks %d, worst lateness %lldms\n",
              static_cast<long long>(to_ms(r->latency).count()), watch.ticks(),
              static_cast<long long>(watch.worst_lateness().count()));
}

TEST(HaproxyHttpProbe, SecondRunSupersedesTheFirst) {
  boost::asio::io_context io;
  TcpListener silent(testing::pick_port(), false);
  auto probe = make_haproxy_http_probe(
      io, http_spec("http://127.0.0.1:" + std::to_string(silent.port()) + "/", 200ms));
  std::vector<Result> results;
  probe->run([&](Result r) { results.push_back(std::move(r)); });
  io.run_for(20ms);
  probe->run([&](Result r) { results.push_back(std::move(r)); });
  auto until = std::chrono::steady_clock::now() + 3s;
  while (results.size() < 2 && std::chrono::steady_clock::now() < until) io.run_for(10ms);
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].reason, "superseded");
  EXPECT_EQ(results[1].reason, "timeout after 200ms");
}

TEST(HaproxyHttpProbe, CancelSuppressesTheCallback) {
  boost::asio::io_context io;
  TcpListener silent(testing::pick_port(), false);
  auto probe = make_haproxy_http_probe(
      io, http_spec("http://127.0.0.1:" + std::to_string(silent.port()) + "/", 100ms));
  int calls = 0;
  probe->run([&](Result) { ++calls; });
  io.run_for(20ms);
  probe->cancel();
  io.restart();
  io.run_for(300ms);
  EXPECT_EQ(calls, 0);
  // Still usable after cancel.
  auto r = run_once(io, *probe);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->reason, "timeout after 100ms");
}

TEST(HaproxyHttpProbe, BadUrlsFailWithAReason) {
  boost::asio::io_context io;
  auto empty = make_haproxy_http_probe(io, http_spec(""));
  auto r = run_once(io, *empty);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, Status::Fail);
  EXPECT_EQ(r->reason, "no url configured");

  auto ftp = make_haproxy_http_probe(io, http_spec("ftp://127.0.0.1/x"));
  r = run_once(io, *ftp);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, Status::Fail);
  EXPECT_FALSE(r->reason.empty());

  auto junk = make_haproxy_http_probe(io, http_spec("http://[::1"));
  r = run_once(io, *junk);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, Status::Fail);
  EXPECT_FALSE(r->reason.empty());
}

TEST(HaproxyHttpProbe, DestroyingWithATransferOutstandingIsSafe) {
  boost::asio::io_context io;
  TcpListener silent(testing::pick_port(), false);
  int calls = 0;
  {
    auto probe = make_haproxy_http_probe(
        io, http_spec("http://127.0.0.1:" + std::to_string(silent.port()) + "/", 100ms));
    probe->run([&](Result) { ++calls; });
    io.run_for(20ms);
  }
  io.restart();
  io.run_for(200ms);
  EXPECT_EQ(calls, 0);
}

}  // namespace
}  // namespace beacon::health
