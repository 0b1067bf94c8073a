// bfdctl reload: request, human output, errors as file:line:column with exit
// 1, --wait following reload-status (settled, or giving up after 5 s).
#include <gtest/gtest.h>

#include <sstream>

#include "beacon/ctl/cli.hpp"

namespace beacon::ctl {
namespace {

using nlohmann::json;

ClientResult ok(json body) {
  ClientResult r;
  r.status = ClientResult::Status::Ok;
  r.response = std::move(body);
  return r;
}

const json kApplied = {
    {"ok", true},
    {"config", "/etc/bfd-beacon/beacon.toml"},
    {"duration_ms", 3.25},
    {"summary",
     "sessions: 1 added, 1 removed, 2 timers changed, 5 unchanged; accept rules: unchanged; "
     "checks: 2 unchanged; groups: 1 unchanged"},
    {"changes", {"session 198.18.0.9: added (group web)", "session 198.18.0.4: removed"}},
    {"warnings",
     {"needs a restart: [engine] timer_slot changed (50us -> 200us); running with 50us"}},
    {"errors", json::array()}};

struct Script {
  std::vector<json> requests;
  std::vector<ClientResult> replies;
  std::size_t next = 0;
  Transport transport() {
    return [this](const std::string&, const json& req, std::chrono::milliseconds) {
      requests.push_back(req);
      return next < replies.size() ? replies[next++] : replies.back();
    };
  }
};

int run(const std::vector<std::string>& args, Script& s, std::string& out, std::string& err) {
  CtlParse p = parse_ctl_args(args);
  EXPECT_TRUE(p.args) << p.error;
  std::ostringstream o, e;
  const int code = run_reload(*p.args, s.transport(), o, e, [](std::chrono::milliseconds) {});
  out = o.str();
  err = e.str();
  return code;
}

TEST(CtlReload, ParsesWaitAndRefusesItElsewhere) {
  auto p = parse_ctl_args({"reload"});
  ASSERT_TRUE(p.args);
  EXPECT_EQ(p.args->command, CtlArgs::Command::Reload);
  EXPECT_EQ(p.args->request, (json{{"cmd", "reload"}, {"wait", false}}));
  p = parse_ctl_args({"reload", "--wait", "--json"});
  ASSERT_TRUE(p.args);
  EXPECT_EQ(p.args->request["wait"], true);
  EXPECT_TRUE(p.args->json);
  EXPECT_FALSE(parse_ctl_args({"sessions", "--wait"}).args);
  EXPECT_FALSE(parse_ctl_args({"reload", "/tmp/other.toml"}).args);  // no file names
  EXPECT_NE(ctl_usage().find("reload [--wait]"), std::string::npos);
}

TEST(CtlReload, HumanOutputListsChangesAndWarnings) {
  Script s;
  s.replies = {ok(kApplied)};
  std::string out, err;
  EXPECT_EQ(run({"reload"}, s, out, err), kExitOk);
  EXPECT_EQ(out,
            "reloaded /etc/bfd-beacon/beacon.toml in 3.2 ms\n"
            "sessions: 1 added, 1 removed, 2 timers changed, 5 unchanged; accept rules: "
            "unchanged; checks: 2 unchanged; groups: 1 unchanged\n"
            "  session 198.18.0.9: added (group web)\n"
            "  session 198.18.0.4: removed\n"
            "warning: needs a restart: [engine] timer_slot changed (50us -> 200us); running with "
            "50us\n");
  EXPECT_EQ(err, "");
  EXPECT_EQ(s.requests.size(), 1u);
}

TEST(CtlReload, ErrorsArePrintedOneALineWithExit1) {
  Script s;
  s.replies = {ok(
      json{{"ok", false},
           {"error", "configuration not reloaded: 2 errors"},
           {"errors", {"/etc/b.toml:3:7: invalid peer address", "/etc/b.toml:9:1: unknown key"}}})};
  std::string out, err;
  EXPECT_EQ(run({"reload"}, s, out, err), kExitRefused);
  EXPECT_EQ(err,
            "bfdctl: configuration not reloaded (2 errors); the running configuration stays in "
            "force:\n/etc/b.toml:3:7: invalid peer address\n/etc/b.toml:9:1: unknown key\n");
  // A refusal without a list (permission) is one line.
  s = Script{};
  s.replies = {ok(json{{"ok", false}, {"error", "permission denied: uid 1001 ..."}})};
  EXPECT_EQ(run({"reload"}, s, out, err), kExitRefused);
  EXPECT_EQ(err, "bfdctl: permission denied: uid 1001 ...\n");
  ClientResult down;
  down.status = ClientResult::Status::Unreachable;
  down.error = "cannot connect";
  s = Script{};
  s.replies = {down};
  EXPECT_EQ(run({"reload"}, s, out, err), kExitUnreachable);
}

TEST(CtlReload, WaitFollowsReloadStatusUntilSettled) {
  json first = kApplied;
  first["settled"] = false;
  first["pending"] = {{"removing", 1}, {"polls", 2}, {"settled", false}};
  Script s;
  s.replies = {
      ok(first),
      ok(json{{"ok", true}, {"progress", {{"removing", 1}, {"polls", 0}, {"settled", false}}}}),
      ok(json{{"ok", true}, {"progress", {{"removing", 0}, {"polls", 0}, {"settled", true}}}})};
  std::string out, err;
  EXPECT_EQ(run({"reload", "--wait"}, s, out, err), kExitOk) << err;
  ASSERT_EQ(s.requests.size(), 3u);
  EXPECT_EQ(s.requests[1], (json{{"cmd", "reload-status"}}));
  EXPECT_NE(out.find("waiting: 1 removed session still signalling, 2 Poll sequences running"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("settled after "), std::string::npos) << out;
}

TEST(CtlReload, WaitGivesUpAfterFiveSecondsAndSaysSo) {
  json first = kApplied;
  first["settled"] = false;
  first["pending"] = {{"removing", 1}, {"polls", 0}, {"settled", false}};
  Script s;
  s.replies = {
      ok(first),
      ok(json{{"ok", true}, {"progress", {{"removing", 1}, {"polls", 0}, {"settled", false}}}})};
  std::string out, err;
  EXPECT_EQ(run({"reload", "--wait"}, s, out, err), kExitRefused);
  EXPECT_EQ(s.requests.size(), 51u);  // 5 s at one poll per 100 ms
  EXPECT_NE(err.find("gave up waiting after 5 s: 1 removed session still signalling"),
            std::string::npos)
      << err;
  // Without --wait an unsettled reload is done at once.
  s = Script{};
  s.replies = {ok(first)};
  EXPECT_EQ(run({"reload"}, s, out, err), kExitOk);
  EXPECT_EQ(s.requests.size(), 1u);
}

TEST(CtlReload, JsonPrintsTheResponse) {
  Script s;
  s.replies = {ok(kApplied)};
  std::string out, err;
  EXPECT_EQ(run({"reload", "--json"}, s, out, err), kExitOk);
  EXPECT_EQ(json::parse(out), kApplied);
}

}  // namespace
}  // namespace beacon::ctl
