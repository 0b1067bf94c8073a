// Control socket access control: the permission decision (pure), the
// /proc/PID/status parser, the dispatcher refusing and auditing, and the
// server passing the real peer credentials and setting the socket's group.
#include "beacon/ctl/access.hpp"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sstream>
#include <string>

#include "beacon/ctl/protocol.hpp"
#include "fake_backend.hpp"

namespace beacon::ctl {
namespace {

using nlohmann::json;

constexpr gid_t kRead = 5001;
constexpr gid_t kAdmin = 5002;

AccessPolicy policy() {
  return AccessPolicy{GroupRef{"bfd-beacon", kRead}, GroupRef{"bfd-beacon-admin", kAdmin}};
}

PeerCredentials user(uid_t uid, gid_t gid, std::vector<gid_t> groups = {}) {
  PeerCredentials p;
  p.known = true;
  p.uid = uid;
  p.gid = gid;
  p.pid = 4242;
  p.groups = std::move(groups);
  return p;
}

// ---------------------------------------------------------------- decide()

TEST(AccessDecide, RootMayDoEverything) {
  EXPECT_TRUE(decide(policy(), user(0, 0), Access::Read).allowed);
  EXPECT_TRUE(decide(policy(), user(0, 0), Access::Admin).allowed);
  // Even when neither group exists on the host.
  AccessPolicy none{GroupRef{"r", std::nullopt}, GroupRef{"a", std::nullopt}};
  EXPECT_TRUE(decide(none, user(0, 0), Access::Admin).allowed);
}

TEST(AccessDecide, ReadGroupMayReadButNotChangeState) {
  for (const auto& who : {user(1001, kRead), user(1001, 100, {27, kRead})}) {
    EXPECT_TRUE(decide(policy(), who, Access::Read).allowed);
    AccessDecision d = decide(policy(), who, Access::Admin);
    EXPECT_FALSE(d.allowed);
    EXPECT_EQ(d.message, "permission denied: uid 1001 is not in admin group bfd-beacon-admin");
  }
}

TEST(AccessDecide, AdminGroupMayDoBoth) {
  for (const auto& who : {user(1002, kAdmin), user(1002, 100, {kAdmin})}) {
    EXPECT_TRUE(decide(policy(), who, Access::Read).allowed);
    EXPECT_TRUE(decide(policy(), who, Access::Admin).allowed);
  }
}

TEST(AccessDecide, OthersMayDoNothing) {
  PeerCredentials who = user(1003, 100, {27, 44});
  AccessDecision r = decide(policy(), who, Access::Read);
  EXPECT_FALSE(r.allowed);
  EXPECT_EQ(r.message, "permission denied: uid 1003 is not in read group bfd-beacon");
  AccessDecision a = decide(policy(), who, Access::Admin);
  EXPECT_FALSE(a.allowed);
  EXPECT_EQ(a.message, "permission denied: uid 1003 is not in admin group bfd-beacon-admin");
}

TEST(AccessDecide, MissingGroupMatchesNobodyAndSaysSo) {
  AccessPolicy p{GroupRef{"bfd-beacon", std::nullopt}, GroupRef{"bfd-beacon-admin", std::nullopt}};
  // gid 0 and a gid equal to nothing configured: neither may match a group
  // that does not exist.
  for (const auto& who : {user(1001, 0), user(1001, 100, {0, kRead, kAdmin})}) {
    AccessDecision r = decide(p, who, Access::Read);
    EXPECT_FALSE(r.allowed);
    EXPECT_EQ(r.message,
              "permission denied: uid 1001 is not in read group bfd-beacon (no such group on this "
              "host: only root and the admin group may read)");
    AccessDecision a = decide(p, who, Access::Admin);
    EXPECT_FALSE(a.allowed);
    EXPECT_EQ(a.message,
              "permission denied: uid 1001 is not in admin group bfd-beacon-admin (no such group "
              "on this host: only root may change state)");
  }
}

TEST(AccessDecide, UnknownCredentialsAreRefusedEvenForUidZero) {
  PeerCredentials who;  // known = false, uid 0 by default
  for (Access a : {Access::Read, Access::Admin}) {
    AccessDecision d = decide(policy(), who, a);
    EXPECT_FALSE(d.allowed);
    EXPECT_EQ(d.message, "permission denied: the caller's credentials could not be read");
  }
}

// ---------------------------------------------------------------- /proc status

constexpr std::string_view kStatus =
    "Name:\tbfdctl\n"
    "Umask:\t0022\n"
    "State:\tR (running)\n"
    "Pid:\t4242\n"
    "Uid:\t1001\t1001\t1001\t1001\n"
    "Gid:\t100\t100\t100\t100\n"
    "FDSize:\t64\n"
    "Groups:\t27 100 5001 \n"
    "NStgid:\t4242\n";

TEST(ProcStatus, ParsesSupplementaryGroups) {
  EXPECT_EQ(parse_status_groups(kStatus, 1001, 100), (std::vector<gid_t>{27, 100, 5001}));
}

TEST(ProcStatus, EmptyGroupsLine) {
  std::string s(kStatus);
  s.replace(s.find("Groups:"), std::string("Groups:\t27 100 5001 ").size(), "Groups:\t");
  EXPECT_TRUE(parse_status_groups(s, 1001, 100).empty());
}

TEST(ProcStatus, OtherIdentityGivesNoGroups) {
  // The PID was reused by another user's process, or the caller changed
  // identity: its groups must not be credited to the connection.
  EXPECT_TRUE(parse_status_groups(kStatus, 0, 100).empty());
  EXPECT_TRUE(parse_status_groups(kStatus, 1001, 0).empty());
  EXPECT_TRUE(parse_status_groups("Groups:\t0\n", 1001, 100).empty());  // no Uid/Gid lines
}

TEST(ProcStatus, GarbageGivesNoGroups) {
  std::string s(kStatus);
  s.replace(s.find("Groups:"), std::string("Groups:\t27 100 5001 ").size(), "Groups:\t27 x 5001");
  EXPECT_TRUE(parse_status_groups(s, 1001, 100).empty());
  EXPECT_TRUE(parse_status_groups("", 1001, 100).empty());
}

TEST(ProcStatus, OwnProcess) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  PeerCredentials who = read_peer_credentials(sv[0]);
  ::close(sv[0]);
  ::close(sv[1]);
  ASSERT_TRUE(who.known);
  EXPECT_EQ(who.uid, ::geteuid());
  EXPECT_EQ(who.gid, ::getegid());
  EXPECT_EQ(who.pid, ::getpid());
  std::vector<gid_t> mine(static_cast<std::size_t>(::getgroups(0, nullptr)));
  mine.resize(static_cast<std::size_t>(::getgroups(static_cast<int>(mine.size()), mine.data())));
  EXPECT_EQ(who.groups, mine);
}

TEST(AccessLookup, GroupAndUserNames) {
  std::string error;
  auto root = lookup_group("root", error);
  ASSERT_TRUE(root) << error;
  EXPECT_EQ(*root, 0u);
  EXPECT_FALSE(lookup_group("no-such-group-bfd-beacon-test", error));
  EXPECT_EQ(error, "");
  EXPECT_EQ(user_name(0), "root");
  EXPECT_EQ(user_name(static_cast<uid_t>(4'000'000'000u)), "?");
}

// ---------------------------------------------------------------- dispatcher

class AccessDispatcher : public ::testing::Test {
 protected:
  void SetUp() override {
    sink_ = std::make_shared<spdlog::sinks::ostream_sink_mt>(log_);
    auto logger = std::make_shared<spdlog::logger>("audit-test", sink_);
    logger->set_pattern("%v");
    dispatcher_.enable_access_control(policy(), logger);
  }
  json ask(const std::string& line, const PeerCredentials& who, const std::string& name = "") {
    Caller c{who, name};
    return json::parse(dispatcher_.handle(line, c));
  }
  std::vector<std::string> audit_lines() const {
    std::vector<std::string> out;
    std::istringstream in(log_.str());
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
  }

  testing::FakeBackend backend_;
  Dispatcher dispatcher_{backend_};
  std::ostringstream log_;
  std::shared_ptr<spdlog::sinks::ostream_sink_mt> sink_;
};

TEST_F(AccessDispatcher, EveryBuiltInCommandIsClassified) {
  EXPECT_EQ(dispatcher_.command_access("sessions"), Access::Read);
  EXPECT_EQ(dispatcher_.command_access("stats"), Access::Read);
  EXPECT_EQ(dispatcher_.command_access("version"), Access::Read);
  EXPECT_EQ(dispatcher_.command_access("session-set-state"), Access::Admin);
  EXPECT_FALSE(dispatcher_.command_access("nope"));
  // A command registered without a class is state-changing.
  dispatcher_.add("frob", {[](const json&) { return json::object(); }, {}});
  EXPECT_EQ(dispatcher_.command_access("frob"), Access::Admin);
}

TEST_F(AccessDispatcher, ReaderReadsButIsRefusedStateChangesAndBothAreAudited) {
  PeerCredentials reader = user(1001, 100, {kRead});
  json s = ask(R"({"cmd":"sessions"})", reader);
  EXPECT_EQ(s.at("ok"), true);
  json r = ask(R"({"cmd":"session-set-state","state":"down","all":true,"id":7})", reader, "alice");
  EXPECT_EQ(r.at("ok"), false);
  EXPECT_EQ(r.at("error"), "permission denied: uid 1001 is not in admin group bfd-beacon-admin");
  EXPECT_EQ(r.at("id"), 7);
  EXPECT_TRUE(backend_.calls_.empty()) << "the engine was asked despite the refusal";

  json ok = ask(R"({"cmd":"session-set-state","state":"down","group":"web"})", user(0, 0), "root");
  EXPECT_EQ(ok.at("ok"), true);
  ASSERT_EQ(backend_.calls_.size(), 1u);

  auto lines = audit_lines();
  ASSERT_EQ(lines.size(), 2u) << log_.str();  // reads are not audited
  EXPECT_EQ(lines[0],
            "audit: uid=1001 user=alice pid=4242 cmd=session-set-state "
            R"(args={"all":true,"id":7,"state":"down"} result=refused: permission denied: uid )"
            "1001 is not in admin group bfd-beacon-admin");
  EXPECT_EQ(lines[1],
            "audit: uid=0 user=root pid=4242 cmd=session-set-state "
            R"(args={"group":"web","state":"down"} result=ok)");
}

TEST_F(AccessDispatcher, OutsiderIsRefusedReadsBeforeFieldValidation) {
  PeerCredentials outsider = user(1003, 100);
  json r = ask(R"({"cmd":"sessions","bogus":1})", outsider);
  EXPECT_EQ(r.at("ok"), false);
  EXPECT_EQ(r.at("error"), "permission denied: uid 1003 is not in read group bfd-beacon");
  EXPECT_TRUE(log_.str().empty()) << "a refused read is not a state change";
}

TEST_F(AccessDispatcher, AllowedButFailingRequestIsAuditedAsError) {
  backend_.hold_error_ = "no session with peer 198.18.9.9";
  json r = ask(R"({"cmd":"session-set-state","state":"down","peer":"198.18.9.9"})",
               user(1002, kAdmin), "bob");
  EXPECT_EQ(r.at("ok"), false);
  json bad = ask(R"({"cmd":"session-set-state","state":"sideways","all":true})", user(1002, kAdmin),
                 "bob");
  EXPECT_EQ(bad.at("ok"), false);
  auto lines = audit_lines();
  ASSERT_EQ(lines.size(), 2u) << log_.str();
  EXPECT_NE(lines[0].find(" result=error: no session with peer 198.18.9.9"), std::string::npos)
      << lines[0];
  EXPECT_NE(lines[1].find(" result=error: invalid state 'sideways'"), std::string::npos)
      << lines[1];
}

TEST_F(AccessDispatcher, UserNameIsLookedUpWhenNotGiven) {
  ask(R"({"cmd":"session-set-state","state":"up","all":true})", user(0, 0));
  EXPECT_NE(log_.str().find("audit: uid=0 user=root pid=4242 "), std::string::npos) << log_.str();
}

TEST_F(AccessDispatcher, NoCallerIsRefusedEverything) {
  json r = json::parse(dispatcher_.handle(R"({"cmd":"version"})"));
  EXPECT_EQ(r.at("ok"), false);
  EXPECT_EQ(r.at("error"), "permission denied: the caller's credentials could not be read");
  json s =
      json::parse(dispatcher_.handle(R"({"cmd":"session-set-state","state":"up","all":true})"));
  EXPECT_EQ(s.at("ok"), false);
  EXPECT_NE(log_.str().find("audit: uid=? user=? pid=? cmd=session-set-state"), std::string::npos)
      << log_.str();
}

TEST(AccessDispatcherOff, WithoutAccessControlEverythingIsAllowed) {
  testing::FakeBackend backend;
  Dispatcher d(backend);
  EXPECT_FALSE(d.access_control_enabled());
  json r = json::parse(d.handle(R"({"cmd":"session-set-state","state":"up","all":true})"));
  EXPECT_EQ(r.at("ok"), true);
}

// ---------------------------------------------------------------- audit_line()

TEST(AuditLine, SanitisesTruncatesAndRedacts) {
  json req{{"cmd", "maintenance"},
           {"reason", "kernel upgrade\nfake line"},
           {"group", std::string(100, 'g')},
           {"password", "hunter2"},
           {"api_token", 12345},
           {"list", json::array({1, 2, 3})},
           {"nested", json{{"a", 1}}},
           {"quote", "a\"b"},
           {"bytes", "\x01\x7f"}};
  std::string line = audit_line(user(1001, 100), "alice", "maintenance", req, "ok");
  EXPECT_EQ(line.find('\n'), std::string::npos);
  EXPECT_EQ(line.find("hunter2"), std::string::npos);
  EXPECT_EQ(line.find("12345"), std::string::npos);
  EXPECT_NE(line.find(R"("password":"<redacted>")"), std::string::npos) << line;
  EXPECT_NE(line.find(R"("api_token":"<redacted>")"), std::string::npos) << line;
  EXPECT_NE(line.find(R"("group":")" + std::string(64, 'g') + R"(...")"), std::string::npos)
      << line;
  EXPECT_NE(line.find(R"("list":"<array of 3>")"), std::string::npos) << line;
  EXPECT_NE(line.find(R"("nested":"<object of 1 fields>")"), std::string::npos) << line;
  EXPECT_NE(line.find(R"("quote":"a\"b")"), std::string::npos) << line;
  EXPECT_NE(line.find(R"("bytes":"??")"), std::string::npos) << line;
  EXPECT_NE(line.find(R"( reason="kernel upgrade?fake line" result=ok)"), std::string::npos)
      << line;
  EXPECT_EQ(line.find("\"cmd\""), std::string::npos) << "cmd is shown on its own";
}

TEST(AuditLine, BoundsTheNumberOfFields) {
  json req{{"cmd", "x"}};
  for (int i = 0; i < 40; ++i) req["f" + std::to_string(100 + i)] = i;
  std::string line = audit_line(user(1, 1), "u", "x", req, "ok");
  EXPECT_NE(line.find(R"("...":"24 more fields")"), std::string::npos) << line;
  EXPECT_LT(line.size(), 600u);
}

}  // namespace
}  // namespace beacon::ctl
