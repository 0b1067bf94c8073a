// The "counters" command: response fields, the peer filter and its errors,
// bfdctl's parsing, exit codes and tables.
#include "beacon/ctl/counters.hpp"

#include <gtest/gtest.h>

#include <sstream>

#include "beacon/ctl/cli.hpp"
#include "fake_backend.hpp"

namespace beacon::ctl {
namespace {

using core::wire::State;
using nlohmann::json;

engine::SessionSnapshot with_counters(std::string peer) {
  engine::SessionSnapshot s = testing::sample_session();
  s.peer = std::move(peer);
  auto& c = s.counters;
  c.rx_packets = 70;
  c.tx_packets = 90;
  c.transitions[static_cast<std::size_t>(State::Up)][static_cast<std::size_t>(State::Down)] = 3;
  c.flaps[static_cast<std::size_t>(core::FlapCause::PeerAdminDown)] = 2;
  c.flaps[static_cast<std::size_t>(core::FlapCause::LocalHold)] = 1;
  c.drops[static_cast<std::size_t>(core::wire::DropReason::WrongPort)] = 6;
  return s;
}

class CountersCommandTest : public ::testing::Test {
 protected:
  CountersCommandTest() {
    backend_.sessions_ = {with_counters("198.18.0.1"), with_counters("fe80::1%veth0")};
    backend_.stats_.drops[static_cast<std::size_t>(core::wire::DropReason::TooShort)] = 8;
  }
  json send(const json& req) { return json::parse(dispatcher_.handle(req.dump())); }

  testing::FakeBackend backend_;
  Dispatcher dispatcher_{backend_};
};

TEST_F(CountersCommandTest, EverySessionWithPacketsDropsTransitionsFlaps) {
  json r = send({{"cmd", "counters"}});
  ASSERT_TRUE(r["ok"].get<bool>()) << r;
  ASSERT_EQ(r["sessions"].size(), 2u);
  const json& s = r["sessions"][0];
  EXPECT_EQ(s["peer"], "198.18.0.1");
  EXPECT_EQ(s["packets"], (json{{"rx", 70}, {"tx", 90}}));
  EXPECT_EQ(s["drops"]["wrong_port"], 6);
  // Every reason a session is charged with, the six authentication ones included.
  EXPECT_EQ(s["drops"].size(), 10u);
  for (const char* r : {"auth_present_not_configured", "auth_missing", "auth_failed",
                        "auth_wrong_type", "auth_unknown_key_id", "auth_bad_sequence"}) {
    EXPECT_EQ(s["drops"][r], 0) << r;
  }
  EXPECT_EQ(s["transitions"]["Up"]["Down"], 3);
  EXPECT_EQ(s["transitions"]["Down"]["Init"], 0);
  EXPECT_FALSE(s["transitions"]["Up"].contains("Up"));
  EXPECT_EQ(s["flaps"],
            (json{{"timeout", 0}, {"peer-down", 0}, {"peer-admin-down", 2}, {"local-hold", 1}}));
  EXPECT_EQ(r["engine"]["drops"]["too_short"], 8);
  EXPECT_EQ(r["engine"]["drops"].size(), core::wire::kDropReasonCount - 1);
}

TEST_F(CountersCommandTest, PeerFilterByShownNameOrAddress) {
  json r = send({{"cmd", "counters"}, {"peer", "198.18.0.1"}});
  ASSERT_EQ(r["sessions"].size(), 1u);
  EXPECT_EQ(send({{"cmd", "counters"}, {"peer", "fe80::1%veth0"}})["sessions"].size(), 1u);
  EXPECT_EQ(send({{"cmd", "counters"}, {"peer", "fe80::1"}})["sessions"].size(), 1u);
  EXPECT_EQ(send({{"cmd", "counters"}, {"peer", "fe80::"}}).value("error", ""),
            "unknown peer 'fe80::'");
}

TEST_F(CountersCommandTest, BadRequestsRefusedWithReasons) {
  EXPECT_EQ(send({{"cmd", "counters"}, {"peer", "10.9.9.9"}})["error"], "unknown peer '10.9.9.9'");
  EXPECT_EQ(send({{"cmd", "counters"}, {"peer", 5}})["error"], "field 'peer' must be a string");
  EXPECT_EQ(send({{"cmd", "counters"}, {"peer", ""}})["error"], "field 'peer' must not be empty");
  EXPECT_EQ(send({{"cmd", "counters"}, {"group", "web"}})["error"],
            "unknown field 'group' for command 'counters'");
  EXPECT_EQ(dispatcher_.command_access("counters"), Access::Read);
}

TEST(CountersCli, ParsesOptionalPeer) {
  auto p = parse_ctl_args({"counters"});
  ASSERT_TRUE(p.args) << p.error;
  EXPECT_EQ(p.args->command, CtlArgs::Command::Counters);
  EXPECT_EQ(p.args->request, (json{{"cmd", "counters"}}));
  p = parse_ctl_args({"counters", "198.18.0.1", "--json"});
  ASSERT_TRUE(p.args) << p.error;
  EXPECT_TRUE(p.args->json);
  EXPECT_EQ(p.args->request, (json{{"cmd", "counters"}, {"peer", "198.18.0.1"}}));
  p = parse_ctl_args({"counters", "a", "b"});
  EXPECT_FALSE(p.args);
  EXPECT_NE(p.error.find("unexpected argument b"), std::string::npos);
  EXPECT_NE(ctl_usage().find("counters [PEER]"), std::string::npos);
}

TEST(CountersCli, ExitCodesAndHumanTables) {
  testing::FakeBackend backend;
  backend.sessions_ = {with_counters("198.18.0.1")};
  Dispatcher d(backend);
  auto transport = [&d](const std::string&, const json& req, std::chrono::milliseconds) {
    ClientResult r;
    r.status = ClientResult::Status::Ok;
    r.response = json::parse(d.handle(req.dump()));
    return r;
  };
  std::ostringstream out, err;
  ASSERT_EQ(run_ctl({"counters"}, transport, out, err), kExitOk) << err.str();
  const std::string t = out.str();
  EXPECT_NE(t.find("PEER"), std::string::npos);
  EXPECT_NE(t.find("PEER-ADMIN-DOWN"), std::string::npos);
  // Row: peer, group, state, rx, tx, flaps total, then by cause.
  EXPECT_NE(t.find("198.18.0.1  web    Up     70  90  3      0        0          2"),
            std::string::npos)
      << t;
  EXPECT_NE(t.find("198.18.0.1  Up    Down  3"), std::string::npos) << t;
  EXPECT_NE(t.find("198.18.0.1  wrong_port  6"), std::string::npos) << t;

  out.str("");
  ASSERT_EQ(run_ctl({"counters", "--json"}, transport, out, err), kExitOk);
  json j = json::parse(out.str());
  EXPECT_FALSE(j.contains("ok"));
  EXPECT_EQ(j["sessions"][0]["packets"]["rx"], 70);

  out.str("");
  err.str("");
  EXPECT_EQ(run_ctl({"counters", "10.1.1.1"}, transport, out, err), kExitRefused);
  EXPECT_EQ(err.str(), "bfdctl: unknown peer '10.1.1.1'\n");
  EXPECT_EQ(run_ctl({"counters", "a", "b"}, transport, out, err), kExitUsage);
}

TEST(CountersFormat, ToleratesMissingFields) {
  EXPECT_EQ(format_counters(json::object()), "no sessions\n\nno state transitions\n\nno drops\n");
  const std::string t = format_counters(json{{"sessions", json::array({json{{"peer", "x"}}})}});
  EXPECT_NE(t.find("x     -      -      -   -   0"), std::string::npos) << t;
}

}  // namespace
}  // namespace beacon::ctl
