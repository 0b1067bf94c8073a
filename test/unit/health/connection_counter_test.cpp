// Drain's connection counter against a real HAProxy 2.6 Runtime API: current
// sessions of the frontends follow clients that connect and leave; the ops
// side's ConnectionSampler answers drain-status from it and forgets counts
// from before a drain began. Generous time bounds only.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "beacon/app/maintenance_wiring.hpp"
#include "beacon/health/probe.hpp"
#include "haproxy_lab.hpp"

namespace beacon::health {
namespace {

using namespace std::chrono_literals;
using testing::HaproxyLab;
using testing::run_until;

// A client connected to the frontend that sends nothing (HAProxy waits for
// its request: one current session).
int connect_idle(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

class CounterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    ASSERT_TRUE(lab_.start(false, error)) << error;
  }
  boost::asio::io_context io_;
  HaproxyLab lab_;
};

TEST_F(CounterTest, FollowsClientsOfTheFrontends) {
  auto probe = make_haproxy_connection_counter(io_.get_executor(), lab_.socket_path(), 1000ms);
  auto r = run_until(io_, *probe, [](const Result& x) {
    return x.status == Status::Pass && x.current_connections == 0u;
  });
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, Status::Pass) << r->reason;
  EXPECT_EQ(r->current_connections, 0u);
  EXPECT_NE(r->reason.find("over 1 frontends"), std::string::npos) << r->reason;
  std::vector<int> fds;
  for (int i = 0; i < 3; ++i) fds.push_back(connect_idle(lab_.frontend_port()));
  for (int fd : fds) ASSERT_GE(fd, 0);
  r = run_until(io_, *probe, [](const Result& x) { return x.current_connections == 3u; });
  ASSERT_TRUE(r);
  EXPECT_EQ(r->current_connections, 3u) << r->reason;
  ::close(fds.back());
  fds.pop_back();
  r = run_until(io_, *probe, [](const Result& x) { return x.current_connections == 2u; });
  ASSERT_TRUE(r);
  EXPECT_EQ(r->current_connections, 2u) << r->reason;
  for (int fd : fds) ::close(fd);
}

TEST_F(CounterTest, MissingSocketFails) {
  auto probe =
      make_haproxy_connection_counter(io_.get_executor(), lab_.dir() + "/none.sock", 300ms);
  auto r = testing::run_once(io_, *probe);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, Status::Fail);
  EXPECT_FALSE(r->current_connections);
}

// Runs io_ until the sampler holds a count (bounded).
bool sample(boost::asio::io_context& io, app::ConnectionSampler& s) {
  const auto until = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < until) {
    io.run_for(20ms);
    if (s.last() && s.last()->connections) return true;
  }
  return false;
}

TEST_F(CounterTest, SamplerAnswersDrainStatusAndForgetsCountsFromBeforeADrain) {
  app::ConnectionSampler s(io_, {lab_.socket_path(), "check sock", {}}, nullptr);
  const int fd = connect_idle(lab_.frontend_port());
  ASSERT_GE(fd, 0);
  s.want();
  ASSERT_TRUE(sample(io_, s));
  auto j = app::drain_status_json(s, {}, std::chrono::system_clock::now());
  EXPECT_EQ(j["draining"], false);
  EXPECT_EQ(j["source"]["socket"], lab_.socket_path());
  EXPECT_EQ(j["source"]["from"], "check sock");
  ASSERT_TRUE(j["connections"].is_number()) << j;
  EXPECT_GE(j["connections"].get<int>(), 0);
  EXPECT_TRUE(j["obtained_at"].is_string());
  EXPECT_LT(j["age_ms"].get<double>(), 2000.0);
  s.set_draining(true);
  EXPECT_FALSE(s.last());  // an old count must not be read as this drain's
  j = app::drain_status_json(s, {}, std::chrono::system_clock::now());
  EXPECT_TRUE(j["connections"].is_null());
  EXPECT_EQ(j["pending"], true);
  ASSERT_TRUE(sample(io_, s));
  ::close(fd);
  s.stop();
}

TEST(Sampler, WithoutSocketSaysThereIsNoWayToCount) {
  boost::asio::io_context io;
  app::ConnectionSampler s(io, {}, nullptr);
  s.want();
  s.set_draining(true);
  io.run_for(50ms);
  auto j = app::drain_status_json(s, {}, std::chrono::system_clock::now());
  EXPECT_TRUE(j["connections"].is_null());
  EXPECT_TRUE(j["source"].is_null());
  EXPECT_NE(j["reason"].get<std::string>().find("no way to count connections"), std::string::npos);
}

}  // namespace
}  // namespace beacon::health
