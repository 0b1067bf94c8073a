// Control protocol v1: request validation, the command registry and the
// handlers over a fake backend.
#include "beacon/ctl/protocol.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "fake_backend.hpp"

namespace beacon::ctl {
namespace {

using nlohmann::json;
using testing::FakeBackend;

class ProtocolTest : public ::testing::Test {
 protected:
  json send(const std::string& line) {
    std::string out = dispatcher_.handle(line);
    EXPECT_EQ(out.find('\n'), std::string::npos) << "response must be a single line";
    return json::parse(out);
  }

  FakeBackend backend_;
  Dispatcher dispatcher_{backend_};
};

struct BadCase {
  const char* name;
  std::string request;
  const char* error_contains;
};

// Every kind of malformed request gets {"ok":false,"error":...} with a message
// that says what is wrong, and the backend is never asked to change anything.
TEST_F(ProtocolTest, MalformedRequestsGetClearErrors) {
  const std::vector<BadCase> cases = {
      {"not json", "hello", "invalid JSON"},
      {"truncated json", R"({"cmd":"sessions")", "invalid JSON"},
      {"trailing garbage", R"({"cmd":"sessions"} x)", "invalid JSON"},
      {"invalid utf8", "{\"cmd\":\"\xff\xfe\"}", "invalid JSON"},
      {"array", R"(["sessions"])", "must be a JSON object"},
      {"string", R"("sessions")", "must be a JSON object"},
      {"null", "null", "must be a JSON object"},
      {"missing cmd", R"({"state":"down"})", "missing field 'cmd'"},
      {"cmd number", R"({"cmd":5})", "'cmd' must be a string"},
      {"cmd null", R"({"cmd":null})", "'cmd' must be a string"},
      {"unknown cmd", R"({"cmd":"reboot"})", "unknown command 'reboot'"},
      {"unknown field", R"({"cmd":"sessions","verbose":true})", "unknown field 'verbose'"},
      {"id object", R"({"cmd":"sessions","id":{"a":1}})", "'id' must be a string or an integer"},
      {"missing state", R"({"cmd":"session-set-state","all":true})", "missing field 'state'"},
      {"state number", R"({"cmd":"session-set-state","state":1,"all":true})",
       "'state' must be a string"},
      {"bad state", R"({"cmd":"session-set-state","state":"init","all":true})",
       "invalid state 'init'"},
      {"state case", R"({"cmd":"session-set-state","state":"DOWN","all":true})",
       "invalid state 'DOWN'"},
      {"no selector", R"({"cmd":"session-set-state","state":"down"})", "selector is required"},
      {"two selectors", R"({"cmd":"session-set-state","state":"down","all":true,"group":"web"})",
       "only one selector"},
      {"three selectors",
       R"({"cmd":"session-set-state","state":"down","all":true,"group":"w","peer":"1.2.3.4"})",
       "only one selector"},
      {"all false", R"({"cmd":"session-set-state","state":"down","all":false})",
       "'all' must be true"},
      {"all string", R"({"cmd":"session-set-state","state":"down","all":"yes"})",
       "'all' must be a boolean"},
      {"peer number", R"({"cmd":"session-set-state","state":"down","peer":17})",
       "'peer' must be a string"},
      {"peer empty", R"({"cmd":"session-set-state","state":"down","peer":""})",
       "'peer' must not be empty"},
      {"group array", R"({"cmd":"session-set-state","state":"down","group":["a"]})",
       "'group' must be a string"},
      {"diag 32", R"({"cmd":"session-set-state","state":"down","diag":32,"all":true})",
       "out of range 0..31"},
      {"diag negative", R"({"cmd":"session-set-state","state":"down","diag":-1,"all":true})",
       "out of range 0..31"},
      {"diag huge",
       R"({"cmd":"session-set-state","state":"down","diag":18446744073709551615,"all":true})",
       "out of range 0..31"},
      {"diag float", R"({"cmd":"session-set-state","state":"down","diag":5.5,"all":true})",
       "'diag' must be an integer"},
      {"diag string", R"({"cmd":"session-set-state","state":"down","diag":"5","all":true})",
       "'diag' must be an integer"},
      {"diag with up", R"({"cmd":"session-set-state","state":"up","diag":0,"all":true})",
       "not allowed with state 'up'"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    json r = send(c.request);
    ASSERT_TRUE(r.is_object());
    EXPECT_EQ(r.at("ok"), false);
    ASSERT_TRUE(r.at("error").is_string());
    EXPECT_NE(r.at("error").get<std::string>().find(c.error_contains), std::string::npos)
        << r.at("error");
  }
  EXPECT_TRUE(backend_.calls_.empty());
}

// The after-change hook runs after every state-changing command that ran
// (ok or not), never after a read-only one or a malformed request.
TEST_F(ProtocolTest, AfterChangeHookRunsForStateChangingCommandsOnly) {
  int calls = 0;
  dispatcher_.set_after_change([&calls] { ++calls; });
  dispatcher_.add("poke", {[](const json&) { return json{{"ok", true}}; }, {}, Access::Admin});
  dispatcher_.add("fails",
                  {[](const json&) -> json { throw RequestError("no"); }, {}, Access::Admin});
  dispatcher_.add("look", {[](const json&) { return json{{"ok", true}}; }, {}, Access::Read});
  EXPECT_TRUE(send(R"({"cmd":"look"})")["ok"].get<bool>());
  EXPECT_FALSE(send(R"({"cmd":"nosuch"})")["ok"].get<bool>());
  EXPECT_FALSE(send("{not json")["ok"].get<bool>());
  EXPECT_EQ(calls, 0);
  EXPECT_TRUE(send(R"({"cmd":"poke"})")["ok"].get<bool>());
  EXPECT_EQ(calls, 1);
  EXPECT_FALSE(send(R"({"cmd":"fails"})")["ok"].get<bool>());
  EXPECT_EQ(calls, 2);
}

TEST_F(ProtocolTest, UnknownCommandListsKnownCommands) {
  json r = send(R"({"cmd":"nope"})");
  std::string e = r.at("error");
  for (const char* name : {"sessions", "session-set-state", "stats", "version"}) {
    EXPECT_NE(e.find(name), std::string::npos) << e;
  }
}

TEST_F(ProtocolTest, NonPrintableNamesAreSanitisedInErrors) {
  json r = send("{\"cmd\":\"a\\u0001b\"}");
  EXPECT_EQ(r.at("error").get<std::string>().find('\x01'), std::string::npos);
  EXPECT_NE(r.at("error").get<std::string>().find("'a?b'"), std::string::npos);
}

TEST_F(ProtocolTest, DeeplyNestedInputDoesNotCrash) {
  std::string deep(20000, '[');
  json r = send(deep);
  EXPECT_EQ(r.at("ok"), false);
  std::string nested =
      R"({"cmd":"sessions","x":)" + std::string(20000, '[') + std::string(20000, ']') + "}";
  r = send(nested);
  EXPECT_EQ(r.at("ok"), false);
}

TEST_F(ProtocolTest, IdIsEchoedOnSuccessAndError) {
  json r = send(R"({"cmd":"version","id":42})");
  EXPECT_EQ(r.at("ok"), true);
  EXPECT_EQ(r.at("id"), 42);
  r = send(R"({"cmd":"bogus","id":"abc"})");
  EXPECT_EQ(r.at("ok"), false);
  EXPECT_EQ(r.at("id"), "abc");
}

TEST_F(ProtocolTest, VersionReportsDaemonAndProtocol) {
  json r = send(R"({"cmd":"version"})");
  EXPECT_EQ(r.at("ok"), true);
  EXPECT_EQ(r.at("version"), BEACON_VERSION);
  EXPECT_EQ(r.at("protocol"), kProtocolVersion);
}

TEST_F(ProtocolTest, SessionsListsEveryFieldOfTheSnapshot) {
  backend_.sessions_ = {testing::sample_session(), testing::sample_session()};
  backend_.sessions_[1].peer = "fe80::1%veth1";
  backend_.sessions_[1].hold = core::Hold::None;
  json r = send(R"({"cmd":"sessions"})");
  ASSERT_EQ(r.at("ok"), true);
  ASSERT_EQ(r.at("sessions").size(), 2u);
  const json& s = r["sessions"][0];
  EXPECT_EQ(s.at("peer"), "198.18.0.1");
  EXPECT_EQ(s.at("local"), "198.18.0.2");
  EXPECT_EQ(s.at("interface"), "veth0");
  EXPECT_EQ(s.at("group"), "web");
  EXPECT_EQ(s.at("multihop"), false);
  EXPECT_EQ(s.at("passive"), false);
  EXPECT_EQ(s.at("dynamic"), false);
  EXPECT_EQ(s.at("source_port"), 49152);
  EXPECT_EQ(s.at("state"), "Up");
  EXPECT_EQ(s.at("remote_state"), "Up");
  EXPECT_EQ(s.at("local_diag"), 0);
  EXPECT_EQ(s.at("local_diag_name"), "none");
  EXPECT_EQ(s.at("remote_diag"), 3);
  EXPECT_EQ(s.at("remote_diag_name"), "neighbor-signaled-down");
  EXPECT_EQ(s.at("local_discr"), 11);
  EXPECT_EQ(s.at("remote_discr"), 22);
  EXPECT_EQ(s.at("hold"), "down");
  EXPECT_EQ(s.at("hold_source"), "admin");
  EXPECT_EQ(s.at("desired_min_tx_us"), 50000);
  EXPECT_EQ(s.at("required_min_rx_us"), 100000);
  EXPECT_EQ(s.at("detect_mult"), 3);
  EXPECT_EQ(s.at("tx_interval_us"), 50000);
  EXPECT_EQ(s.at("detection_time_us"), 300000);
  EXPECT_EQ(s.at("remote_min_rx_us"), 100000);
  EXPECT_EQ(s.at("remote_desired_min_tx_us"), 100000);
  EXPECT_EQ(s.at("remote_detect_mult"), 3);
  EXPECT_EQ(s.at("counters").at("rx_packets"), 7);
  EXPECT_EQ(s.at("counters").at("tx_packets"), 9);
  for (const char* k : {"rx_dropped", "state_changes", "up_count", "down_count", "polls_started",
                        "finals_sent", "detect_timeouts"}) {
    EXPECT_TRUE(s.at("counters").contains(k)) << k;
  }
  EXPECT_EQ(s.at("since_change_ms"), 125500);
  EXPECT_EQ(r["sessions"][1].at("peer"), "fe80::1%veth1");
  EXPECT_EQ(r["sessions"][1].at("hold"), "none");
  EXPECT_TRUE(r["sessions"][1].at("hold_source").is_null());
}

TEST_F(ProtocolTest, EmptySessionListIsAnArray) {
  json r = send(R"({"cmd":"sessions"})");
  EXPECT_EQ(r.at("sessions"), json::array());
}

TEST_F(ProtocolTest, StatsIncludeEveryDropReasonByName) {
  backend_.stats_.rx_datagrams = 100;
  backend_.stats_.drops[static_cast<std::size_t>(core::wire::DropReason::BadTtl)] = 4;
  backend_.stats_.timer_fires = 4;
  backend_.stats_.timer_lateness_total = core::Duration{400};
  backend_.stats_.timer_lateness_max = core::Duration{250};
  json r = send(R"({"cmd":"stats"})");
  ASSERT_EQ(r.at("ok"), true);
  const json& st = r.at("stats");
  EXPECT_EQ(st.at("rx_datagrams"), 100);
  EXPECT_EQ(st.at("timer_lateness_max_us"), 250);
  EXPECT_EQ(st.at("timer_lateness_mean_us"), 100);
  EXPECT_EQ(st.at("drops").size(), core::wire::kDropReasonCount - 1);  // no "None"
  EXPECT_EQ(
      st.at("drops").at(std::string(core::wire::drop_reason_name(core::wire::DropReason::BadTtl))),
      4);
}

struct SetStateCase {
  const char* request;
  core::Hold hold;
  std::uint8_t diag;
  engine::Selector::Kind kind;
  const char* value;
};

// set-state defaults: down -> diag 5, admin-down -> diag 7, up releases; always
// through HoldSource::Admin.
TEST_F(ProtocolTest, SetStateMapsToHoldsWithDefaults) {
  const std::vector<SetStateCase> cases = {
      {R"({"cmd":"session-set-state","state":"down","all":true})", core::Hold::Down, 5,
       engine::Selector::Kind::All, ""},
      {R"({"cmd":"session-set-state","state":"admin-down","group":"web"})", core::Hold::AdminDown,
       7, engine::Selector::Kind::Group, "web"},
      {R"({"cmd":"session-set-state","state":"down","diag":3,"peer":"198.18.0.1"})",
       core::Hold::Down, 3, engine::Selector::Kind::Peer, "198.18.0.1"},
      {R"({"cmd":"session-set-state","state":"down","diag":0,"all":true})", core::Hold::Down, 0,
       engine::Selector::Kind::All, ""},
      {R"({"cmd":"session-set-state","state":"admin-down","diag":31,"all":true})",
       core::Hold::AdminDown, 31, engine::Selector::Kind::All, ""},
      {R"({"cmd":"session-set-state","state":"up","peer":"fe80::1%veth0"})", core::Hold::None, 0,
       engine::Selector::Kind::Peer, "fe80::1%veth0"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.request);
    backend_.calls_.clear();
    json r = send(c.request);
    ASSERT_EQ(r.at("ok"), true) << r;
    EXPECT_EQ(r.at("matched"), 2);
    ASSERT_EQ(backend_.calls_.size(), 1u);
    const auto& call = backend_.calls_[0];
    EXPECT_EQ(call.source, engine::HoldSource::Admin);
    EXPECT_EQ(call.hold, c.hold);
    EXPECT_EQ(call.diag, c.diag);
    EXPECT_EQ(call.selector.kind, c.kind);
    EXPECT_EQ(call.selector.value, c.value);
    if (c.hold == core::Hold::None) {
      EXPECT_FALSE(r.contains("diag"));
      EXPECT_EQ(r.at("state"), "up");
    } else {
      EXPECT_EQ(r.at("diag"), c.diag);
    }
  }
}

TEST_F(ProtocolTest, BackendRefusalBecomesError) {
  backend_.hold_error_ = "no session with peer 198.18.9.9";
  json r = send(R"({"cmd":"session-set-state","state":"down","peer":"198.18.9.9"})");
  EXPECT_EQ(r.at("ok"), false);
  EXPECT_EQ(r.at("error"), "no session with peer 198.18.9.9");
}

TEST_F(ProtocolTest, BackendExceptionBecomesInternalErrorNotCrash) {
  backend_.throw_ = true;
  json r = send(R"({"cmd":"sessions"})");
  EXPECT_EQ(r.at("ok"), false);
  EXPECT_NE(r.at("error").get<std::string>().find("internal error"), std::string::npos);
  backend_.throw_ = false;
  EXPECT_EQ(send(R"({"cmd":"sessions"})").at("ok"), true);
}

TEST_F(ProtocolTest, RegistryAcceptsNewCommandsAndTheirFields) {
  dispatcher_.add("echo", {[](const json& req) {
                             return json{{"said", req.at("text")}};
                           },
                           {"text"}});
  json r = send(R"({"cmd":"echo","text":"hi"})");
  EXPECT_EQ(r.at("ok"), true);
  EXPECT_EQ(r.at("said"), "hi");
  EXPECT_EQ(send(R"({"cmd":"echo","loud":true})").at("ok"), false);
  auto names = dispatcher_.command_names();
  EXPECT_NE(std::find(names.begin(), names.end(), "echo"), names.end());
}

// One line in, one JSON object line out with a boolean "ok" (and a string
// "error" when refused), never an exception.
void expect_well_formed(Dispatcher& d, const std::string& line) {
  std::string out;
  ASSERT_NO_THROW(out = d.handle(line)) << line.substr(0, 80);
  json r;
  ASSERT_NO_THROW(r = json::parse(out)) << out;
  ASSERT_TRUE(r.is_object());
  ASSERT_TRUE(r.at("ok").is_boolean());
  if (!r["ok"].get<bool>()) {
    EXPECT_TRUE(r.at("error").is_string());
  }
}

// Seeded random garbage and mutated valid requests: always one JSON object
// line with a boolean "ok", never an exception, never a backend change unless
// the mutation still spells a valid request.
TEST_F(ProtocolTest, RandomInputAlwaysGetsAWellFormedResponse) {
  std::mt19937 rng(12345);
  const std::string valid = R"({"cmd":"session-set-state","state":"down","diag":5,"all":true})";
  for (int i = 0; i < 5000; ++i) {
    std::string line;
    if (i % 2 == 0) {
      std::size_t len = rng() % 64;
      for (std::size_t k = 0; k < len; ++k) line += static_cast<char>(rng() % 256);
    } else {
      line = valid;
      for (int m = 0; m < 3; ++m) line[rng() % line.size()] = static_cast<char>(rng() % 128);
    }
    expect_well_formed(dispatcher_, line);
  }
}

// Hostile seeds, each sent as is and then mutated: numbers that overflow a
// double (the parser reports those as out_of_range, not parse_error), deep
// nesting, invalid UTF-8 and lone surrogates, in every position of a request.
// Each must get one well-formed error or ok line, never an exception.
TEST_F(ProtocolTest, HostileSeedsAndTheirMutationsGetAWellFormedResponse) {
  const std::string deep_array = std::string(20000, '[') + std::string(20000, ']');
  const std::string deep_object = [] {
    std::string out;
    for (int i = 0; i < 5000; ++i) out += R"({"a":)";
    out += "1";
    out += std::string(5000, '}');
    return out;
  }();
  const std::vector<std::string> seeds = {
      R"({"cmd":"groups","n":-1e400})",
      R"({"cmd":"groups","n":1e999999})",
      R"({"cmd":"sessions","id":1e400})",
      R"({"cmd":1e400})",
      R"({"cmd":"session-set-state","state":"down","diag":1e400,"all":true})",
      R"({"cmd":"session-set-state","state":"down","diag":-1e400,"all":true})",
      R"({"cmd":"session-set-state","state":"down","diag":18446744073709551616,"all":true})",
      R"({"cmd":"session-set-state","state":"down","diag":-9223372036854775809,"all":true})",
      R"({"cmd":"session-set-state","state":"down","diag":5e-400,"all":true})",
      R"([1e400])",
      R"(1e400)",
      R"({"cmd":"sessions","x":[1,2,[3,[4e999]]]})",
      R"({"cmd":"groups","n":1E+400})",
      R"({"cmd":"groups","n":0.1e400})",
      "{\"cmd\":\"groups\",\"n\":\"\xff\xfe\"}",
      "{\"cmd\":\"\xc3\x28\"}",
      "{\"cmd\":\"sessions\",\"id\":\"\xed\xa0\x80\"}",
      R"({"cmd":"sessions","id":"\ud800"})",
      R"({"cmd":"sessions","id":"\udc00\ud800"})",
      R"({"cmd":"\u0000"})",
      R"({"cmd":"sessions","id":"\uZZZZ"})",
      deep_array,
      deep_object,
      R"({"cmd":"sessions","n":)" + deep_array + "}",
      R"({"cmd":"groups","n":1e400,"id":"after"})",
  };
  auto check = [&](const std::string& line) { expect_well_formed(dispatcher_, line); };
  for (const auto& seed : seeds) check(seed);
  // The exact requests of the field report are refused as invalid JSON.
  for (const char* line : {R"({"cmd":"groups","n":-1e400})", R"({"cmd":"groups","n":1e999999})"}) {
    json r = json::parse(dispatcher_.handle(line));
    EXPECT_EQ(r.at("ok"), false);
    EXPECT_NE(r.at("error").get<std::string>().find("invalid JSON"), std::string::npos) << r.dump();
  }
  std::mt19937 rng(777);
  const std::string alphabet = "0123456789eE+-.[]{}\":,\\u \xff\xed\x80";
  for (int i = 0; i < 4000; ++i) {
    std::string line = seeds[rng() % seeds.size()];
    if (line.size() > 4096) line.resize(rng() % 4096);  // keep deep seeds cheap to mutate
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int m = 0; m < edits && !line.empty(); ++m) {
      const std::size_t at = rng() % line.size();
      switch (rng() % 3) {
        case 0:
          line[at] = alphabet[rng() % alphabet.size()];
          break;
        case 1:
          line.insert(at, 1, alphabet[rng() % alphabet.size()]);
          break;
        default:
          line.erase(at, 1);
          break;
      }
    }
    check(line);
  }
}

TEST(DumpJson, InvalidUtf8IsReplacedNotThrown) {
  json j = std::string("\xff\xfe");
  EXPECT_NO_THROW(dump_json(j));
}

}  // namespace
}  // namespace beacon::ctl
