// bfdctl human output: units, ages, the sessions table and tolerance of odd
// responses.
#include "beacon/ctl/format.hpp"

#include <gtest/gtest.h>

#include "beacon/ctl/protocol.hpp"
#include "fake_backend.hpp"

namespace beacon::ctl {
namespace {

using nlohmann::json;

TEST(Format, Intervals) {
  EXPECT_EQ(format_interval_us(0), "-");
  EXPECT_EQ(format_interval_us(300), "300us");
  EXPECT_EQ(format_interval_us(50'000), "50ms");
  EXPECT_EQ(format_interval_us(3'300), "3.3ms");
  EXPECT_EQ(format_interval_us(1'000'000), "1s");
  EXPECT_EQ(format_interval_us(1'500'000), "1.5s");
}

TEST(Format, Ages) {
  EXPECT_EQ(format_age_ms(850), "850ms");
  EXPECT_EQ(format_age_ms(42'000), "42s");
  EXPECT_EQ(format_age_ms(187'000), "3m07s");
  EXPECT_EQ(format_age_ms(7'500'000), "2h05m");
  EXPECT_EQ(format_age_ms(273'600'000), "3d04h");
}

TEST(Format, SessionsTableHasHeaderAndOneRowPerSession) {
  json list = json::array({session_to_json(testing::sample_session())});
  std::string t = format_sessions_table(list);
  EXPECT_EQ(t.rfind("PEER", 0), 0u);
  for (const char* col : {"LOCAL", "IFACE", "GROUP", "STATE", "REMOTE", "DIAG(L/R)", "LDISC",
                          "RDISC", "TX", "RX/DETECT", "HOLD", "SINCE", "REASON"}) {
    EXPECT_NE(t.find(col), std::string::npos) << col;
  }
  EXPECT_EQ(std::count(t.begin(), t.end(), '\n'), 2);
  for (const char* v : {"198.18.0.1", "198.18.0.2", "veth0", "web", "Up", "0/3", "11", "22", "50ms",
                        "100ms/300ms", "down(admin)", "2m05s"}) {
    EXPECT_NE(t.find(v), std::string::npos) << v << "\n" << t;
  }
}

TEST(Format, SessionsTableShowsAuthTypeAndSigningKeyId) {
  auto s = testing::sample_session();
  std::string t = format_sessions_table(json::array({session_to_json(s)}));
  EXPECT_NE(t.find("AUTH"), std::string::npos) << t;
  s.auth_type = core::wire::AuthType::MeticulousKeyedSha1;
  s.auth_key_id = 12;
  t = format_sessions_table(json::array({session_to_json(s)}));
  EXPECT_NE(t.find("meticulous-keyed-sha1:12"), std::string::npos) << t;
}

// A session a reload removed is listed until it is gone, marked as such.
TEST(Format, SessionsTableMarksARemovingSession) {
  auto gone = testing::sample_session();
  gone.removing = true;
  gone.hold_reason = "removed from the configuration";
  auto kept = testing::sample_session();
  kept.peer = "198.18.0.9";
  const json list = json::array({session_to_json(gone), session_to_json(kept)});
  for (const bool compact : {false, true}) {
    const std::string t = sessions_table(list, Style{}, compact).render();
    EXPECT_EQ(std::count(t.begin(), t.end(), '\n'), 3) << t;
    EXPECT_NE(t.find("198.18.0.1 (removing)"), std::string::npos) << t;
    EXPECT_EQ(t.find("198.18.0.9 (removing)"), std::string::npos) << t;
  }
}

TEST(Format, SessionsTableShowsHoldReasonOnlyWhenHeld) {
  auto held = testing::sample_session();
  held.hold_reason = "check haproxy: HTTP 503";
  std::string t = format_sessions_table(json::array({session_to_json(held)}));
  EXPECT_NE(t.find("check haproxy: HTTP 503"), std::string::npos) << t;
  auto free = held;
  free.hold = core::Hold::None;
  t = format_sessions_table(json::array({session_to_json(free)}));
  EXPECT_EQ(t.find("check haproxy"), std::string::npos) << t;
}

// SIGNAL is what the sessions send (any hold source), not only the health
// decision: a healthy group under operator maintenance is sending AdminDown.
TEST(Format, GroupsTableShowsTheSignalSentUnderMaintenance) {
  json groups = json::array({json{{"name", "web"},
                                  {"verdict", "healthy"},
                                  {"hold", "none"},
                                  {"diag", 0},
                                  {"reason", "healthy"},
                                  {"signal",
                                   {{"hold", "admin-down"},
                                    {"diag", 7},
                                    {"source", "maintenance"},
                                    {"reason", "patching"},
                                    {"sessions", 2}}}}});
  const std::string t = format_groups_table(groups);
  EXPECT_NE(t.find("admin-down diag 7 (maintenance)"), std::string::npos) << t;
  EXPECT_NE(t.find("(maintenance)  patching\n"), std::string::npos) << t;
  EXPECT_EQ(t.find("none"), std::string::npos) << t;
  // Without "signal" (an older daemon) the health decision is shown.
  groups[0].erase("signal");
  EXPECT_NE(format_groups_table(groups).find("none"), std::string::npos);
}

TEST(Format, TableToleratesMissingAndWrongFields) {
  json list = json::array({json::object(), json{{"peer", 5}, {"state", nullptr}}, "junk"});
  std::string t;
  EXPECT_NO_THROW(t = format_sessions_table(list));
  EXPECT_EQ(std::count(t.begin(), t.end(), '\n'), 4);
  EXPECT_NO_THROW(format_sessions_table(json("not an array")));
  EXPECT_NO_THROW(format_stats(json::array()));
  EXPECT_NO_THROW(format_set_state(json::object()));
}

TEST(Format, StatsListNonzeroDropsOnly) {
  json s{{"sessions", 3}, {"rx_datagrams", 10}, {"drops", {{"bad_ttl", 2}, {"bad_version", 0}}}};
  std::string t = format_stats(s);
  EXPECT_NE(t.find("bad_ttl"), std::string::npos);
  EXPECT_EQ(t.find("bad_version"), std::string::npos);
  EXPECT_NE(t.find("rx_datagrams:"), std::string::npos);
  EXPECT_NE(format_stats(json{{"drops", {{"bad_ttl", 0}}}}).find("drops: none"), std::string::npos);
}

TEST(Format, SetStateMessage) {
  EXPECT_EQ(format_set_state({{"ok", true}, {"matched", 3}, {"state", "admin-down"}, {"diag", 7}}),
            "3 sessions set to admin-down (diag 7)");
  EXPECT_EQ(format_set_state({{"ok", true}, {"matched", 0}, {"state", "up"}}),
            "0 sessions set to up");
}

}  // namespace
}  // namespace beacon::ctl
