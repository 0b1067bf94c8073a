// MaintenanceStore (state file rules, injected file I/O and clock), the
// atomic write on a real temporary directory, the control commands over a
// Dispatcher with a fake engine, status and the "show stat" frontend sum.
#include "beacon/app/maintenance.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "beacon/app/maintenance_wiring.hpp"
#include "beacon/health/probe.hpp"

namespace beacon::app {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

// An in-memory state directory.
struct FakeFs {
  std::map<std::string, std::string> files;
  std::string read_error;   // set: the file exists but cannot be read
  std::string write_error;  // set: every write fails with it
  int writes = 0;
  std::chrono::system_clock::time_point now =
      std::chrono::system_clock::from_time_t(1'796'216'991);  // 2026-12-02T13:09:51Z

  MaintenanceIo io() {
    MaintenanceIo io;
    io.read = [this](const std::string& p) {
      MaintenanceIo::ReadResult r;
      if (!read_error.empty()) {
        r.exists = true;
        r.error = read_error;
        return r;
      }
      auto it = files.find(p);
      if (it == files.end()) return r;
      r.exists = true;
      r.content = it->second;
      return r;
    };
    io.write = [this](const std::string& p, const std::string& c) -> std::string {
      ++writes;
      if (!write_error.empty()) return write_error;
      files[p] = c;
      return {};
    };
    io.now = [this] { return now; };
    return io;
  }
};

constexpr const char* kPath = "/state/maintenance.json";

MaintenanceCaller alice() {
  return MaintenanceCaller{1001, "alice"};
}

TEST(MaintenanceStore, NoFileMeansNoMaintenance) {
  FakeFs fs;
  MaintenanceStore s("/state", fs.io());
  auto rep = s.load();
  EXPECT_FALSE(rep.error);
  EXPECT_NE(rep.message.find("no state file"), std::string::npos);
  EXPECT_TRUE(s.entries().empty());
  EXPECT_TRUE(s.scopes().empty());
  EXPECT_EQ(s.path(), kPath);
}

TEST(MaintenanceStore, OnIsWrittenAndReadBackAsFromTheStateFile) {
  FakeFs fs;
  {
    MaintenanceStore s("/state", fs.io());
    s.load();
    auto r = s.set_on("all", alice(), "kernel upgrade", false);
    EXPECT_FALSE(r.refused);
    EXPECT_TRUE(r.persisted);
    ASSERT_EQ(s.entries().size(), 1u);
    EXPECT_EQ(s.entries()[0].origin, MaintenanceOrigin::Command);
    EXPECT_EQ(s.entries()[0].since, "2026-12-02T13:09:51Z");
  }
  ASSERT_TRUE(fs.files.count(kPath));
  MaintenanceStore again("/state", fs.io());
  auto rep = again.load();
  EXPECT_FALSE(rep.error);
  ASSERT_EQ(again.entries().size(), 1u);
  const MaintenanceEntry& e = again.entries()[0];
  EXPECT_EQ(e.scope, "all");
  EXPECT_EQ(e.uid, 1001u);
  EXPECT_EQ(e.user, "alice");
  EXPECT_EQ(e.reason, "kernel upgrade");
  EXPECT_EQ(e.since, "2026-12-02T13:09:51Z");
  EXPECT_EQ(e.origin, MaintenanceOrigin::StateFile);
  auto scopes = again.scopes();
  ASSERT_EQ(scopes.size(), 1u);
  EXPECT_EQ(scopes[0].group, "");  // all
  EXPECT_EQ(scopes[0].reason, "maintenance (state file) by alice: kernel upgrade");
}

TEST(MaintenanceStore, CorruptFileFailsClosedAndIsNotOverwrittenByLoading) {
  for (const std::string bad :
       {"{not json", "[]", R"({"version":2,"maintenance":[]})", R"({"version":1})",
        R"({"version":1,"maintenance":[{"scope":""}]})",
        R"({"version":1,"maintenance":[{"scope":"a"},{"scope":"a"}]})", ""}) {
    SCOPED_TRACE(bad);
    FakeFs fs;
    fs.files[kPath] = bad;
    MaintenanceStore s("/state", fs.io());
    auto rep = s.load();
    EXPECT_TRUE(rep.error);
    EXPECT_TRUE(s.damaged());
    ASSERT_EQ(s.entries().size(), 1u);
    EXPECT_EQ(s.entries()[0].scope, "all");
    EXPECT_EQ(s.entries()[0].origin, MaintenanceOrigin::StateFile);
    EXPECT_NE(s.entries()[0].reason.find("unreadable"), std::string::npos);
    EXPECT_NE(s.entries()[0].reason.find("failing closed"), std::string::npos);
    EXPECT_EQ(fs.writes, 0);
    EXPECT_EQ(fs.files[kPath], bad);
  }
}

TEST(MaintenanceStore, UnreadableFileFailsClosed) {
  FakeFs fs;
  fs.read_error = "open /state/maintenance.json: Permission denied";
  MaintenanceStore s("/state", fs.io());
  EXPECT_TRUE(s.load().error);
  ASSERT_EQ(s.scopes().size(), 1u);
  EXPECT_NE(s.entries()[0].reason.find("Permission denied"), std::string::npos);
}

TEST(MaintenanceStore, OffAfterCorruptFileRewritesIt) {
  FakeFs fs;
  fs.files[kPath] = "garbage";
  MaintenanceStore s("/state", fs.io());
  s.load();
  auto r = s.set_off("all");
  EXPECT_FALSE(r.refused);
  EXPECT_FALSE(s.damaged());
  EXPECT_TRUE(s.entries().empty());
  std::string err;
  auto back = decode_state_file(fs.files[kPath], err);
  ASSERT_TRUE(back) << err;
  EXPECT_TRUE(back->empty());
}

// The memory / disk rule: "on" is applied even when it cannot be written (and
// says so); "off" is refused unless it is written.
TEST(MaintenanceStore, WriteFailureOnAppliesOffRefuses) {
  FakeFs fs;
  MaintenanceStore s("/state", fs.io());
  s.load();
  fs.write_error = "write /state/maintenance.json.tmp.1: No space left on device";
  auto on = s.set_on("web", alice(), "", false);
  EXPECT_FALSE(on.refused);
  EXPECT_FALSE(on.persisted);
  EXPECT_NE(on.error.find("No space left"), std::string::npos);
  ASSERT_EQ(s.entries().size(), 1u);
  auto off = s.set_off("web");
  EXPECT_TRUE(off.refused);
  EXPECT_EQ(s.entries().size(), 1u);  // still on in memory
  fs.write_error.clear();
  off = s.set_off("web");
  EXPECT_FALSE(off.refused);
  EXPECT_TRUE(s.entries().empty());
}

TEST(MaintenanceStore, ScopesGroupOffKeepsAllAndDrainKeepsItsStart) {
  FakeFs fs;
  MaintenanceStore s("/state", fs.io());
  s.load();
  s.set_on("web", alice(), "disk", true);
  const std::string started = s.entries()[0].drain_started;
  EXPECT_FALSE(started.empty());
  fs.now += std::chrono::seconds(30);
  s.set_on("web", alice(), "disk, again", true);
  EXPECT_EQ(s.entries()[0].drain_started, started);
  EXPECT_EQ(s.entries()[0].since, "2026-12-02T13:10:21Z");
  s.set_on("all", MaintenanceCaller{}, "", false);
  EXPECT_EQ(s.covering("web")->scope, "web");
  EXPECT_EQ(s.covering("api")->scope, "all");
  EXPECT_EQ(s.entries()[1].user, "?");
  auto r = s.set_off("web");
  EXPECT_EQ(r.still, std::vector<std::string>{"all"});
  s.set_on("web", alice(), "", false);
  s.set_off("all");  // every scope
  EXPECT_TRUE(s.entries().empty());
}

TEST(MaintenanceStore, EncodeDecodeRoundTrip) {
  MaintenanceEntry e{"web",          0,
                     "root",         "2026-12-02T14:00:00Z",
                     "x \"quoted\"", MaintenanceOrigin::Command,
                     true,           "2026-12-02T14:00:00Z"};
  std::string err;
  auto back = decode_state_file(encode_state_file({e}), err);
  ASSERT_TRUE(back) << err;
  ASSERT_EQ(back->size(), 1u);
  e.origin = MaintenanceOrigin::StateFile;
  EXPECT_EQ((*back)[0], e);
  EXPECT_NE(encode_state_file({e}).find("\"version\": 1"), std::string::npos);
}

TEST(MaintenanceFile, AtomicWriteCreatesTheDirectoryAndLeavesNoTemporary) {
  const fs::path dir = fs::temp_directory_path() / ("beacon-maint-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  const std::string path = (dir / "sub" / "maintenance.json").string();
  EXPECT_EQ(write_file_atomically(path, "one\n"), "");
  EXPECT_EQ(write_file_atomically(path, "two\n"), "");
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(text, "two\n");
  std::size_t n = 0;
  for (const auto& f : fs::directory_iterator(dir / "sub")) {
    (void)f;
    ++n;
  }
  EXPECT_EQ(n, 1u);  // no .tmp left behind
  // A directory that cannot be created (a file in the way) is an error.
  const std::string blocked = (dir / "sub" / "maintenance.json" / "x.json").string();
  EXPECT_NE(write_file_atomically(blocked, "x"), "");
  fs::remove_all(dir);
}

TEST(MaintenanceFile, Rfc3339) {
  EXPECT_EQ(rfc3339_utc(std::chrono::system_clock::from_time_t(0)), "1970-01-01T00:00:00Z");
}

// ---------------------------------------------------------------- commands

class Commands : public ::testing::Test {
 protected:
  Commands() : store_("/state", fs_.io()), sampler_(io_, ConnectionSource{}, nullptr) {
    config::SessionSpec s;
    s.peer = boost::asio::ip::make_address("198.18.0.1");
    s.group = "web";
    cfg_.sessions.push_back(s);
    store_.load();
    MaintenanceDeps deps;
    deps.set_maintenance = [this](std::vector<engine::MaintenanceScope> m) {
      applied_ = m;
      ++applies_;
      return engine::HoldResult{m.empty() ? 0u : 1u, {}};
    };
    deps.sessions = [this] { return sessions_; };
    deps.now = [this] { return fs_.now; };
    register_maintenance_commands(d_, store_, sampler_, cfg_, deps, nullptr);
  }

  json call(const json& req) {
    ctl::Caller c;
    c.credentials.known = true;
    c.credentials.uid = 1001;
    c.user = "alice";
    return json::parse(d_.handle(req.dump(), c));
  }

  boost::asio::io_context io_;
  FakeFs fs_;
  config::Config cfg_;
  MaintenanceStore store_;
  ConnectionSampler sampler_;
  ctl::Dispatcher d_;
  std::vector<engine::MaintenanceScope> applied_;
  int applies_ = 0;
  std::vector<engine::SessionSnapshot> sessions_;
};

TEST_F(Commands, MaintenanceOnRecordsCallerAndReachesTheEngine) {
  auto r = call({{"cmd", "maintenance"}, {"state", "on"}, {"reason", "kernel"}});
  ASSERT_TRUE(r["ok"].get<bool>()) << r;
  EXPECT_EQ(r["scope"], "all");
  EXPECT_EQ(r["persisted"], true);
  ASSERT_EQ(applied_.size(), 1u);
  EXPECT_EQ(applied_[0].group, "");
  EXPECT_EQ(applied_[0].reason, "maintenance by alice: kernel");
  EXPECT_EQ(r["maintenance"][0]["user"], "alice");
  EXPECT_EQ(r["maintenance"][0]["uid"], 1001);
  EXPECT_EQ(r["maintenance"][0]["origin"], "command");
  r = call({{"cmd", "maintenance"}, {"state", "off"}});
  ASSERT_TRUE(r["ok"].get<bool>()) << r;
  EXPECT_TRUE(applied_.empty());
  EXPECT_EQ(d_.command_access("maintenance"), ctl::Access::Admin);
  EXPECT_EQ(d_.command_access("drain"), ctl::Access::Admin);
  EXPECT_EQ(d_.command_access("undrain"), ctl::Access::Admin);
  EXPECT_EQ(d_.command_access("status"), ctl::Access::Read);
  EXPECT_EQ(d_.command_access("drain-status"), ctl::Access::Read);
}

TEST_F(Commands, BadRequestsAreRefusedWithoutChange) {
  for (const json& req :
       {json{{"cmd", "maintenance"}}, json{{"cmd", "maintenance"}, {"state", "maybe"}},
        json{{"cmd", "maintenance"}, {"state", "on"}, {"group", "nope"}},
        json{{"cmd", "maintenance"}, {"state", "on"}, {"group", 3}},
        json{{"cmd", "maintenance"}, {"state", "on"}, {"group", "all"}},
        json{{"cmd", "maintenance"}, {"state", "on"}, {"reason", std::string(300, 'x')}},
        json{{"cmd", "maintenance"}, {"state", "on"}, {"extra", 1}},
        json{{"cmd", "undrain"}, {"reason", "x"}}}) {
    SCOPED_TRACE(req.dump());
    auto r = call(req);
    EXPECT_FALSE(r["ok"].get<bool>());
    EXPECT_TRUE(r["error"].is_string());
  }
  EXPECT_EQ(applies_, 0);
  auto r = call({{"cmd", "maintenance"}, {"state", "on"}, {"group", "nope"}});
  EXPECT_NE(r["error"].get<std::string>().find("unknown group 'nope' (known: web)"),
            std::string::npos);
}

// Every command taking a group refuses one the configuration does not know,
// naming it, and changes nothing.
TEST_F(Commands, UnknownGroupIsRefusedByEveryCommand) {
  for (const json& req : {json{{"cmd", "maintenance"}, {"state", "on"}, {"group", "nosuch"}},
                          json{{"cmd", "maintenance"}, {"state", "off"}, {"group", "nosuch"}},
                          json{{"cmd", "drain"}, {"group", "nosuch"}},
                          json{{"cmd", "undrain"}, {"group", "nosuch"}}}) {
    SCOPED_TRACE(req.dump());
    auto r = call(req);
    EXPECT_FALSE(r["ok"].get<bool>());
    EXPECT_NE(r["error"].get<std::string>().find("unknown group 'nosuch'"), std::string::npos) << r;
  }
  EXPECT_EQ(applies_, 0);
  EXPECT_TRUE(store_.entries().empty());
}

// Maintenance of a group that a reload removed can still be ended.
TEST_F(Commands, MaintenanceOfAGroupGoneFromTheConfigCanBeEnded) {
  ASSERT_TRUE(call({{"cmd", "maintenance"}, {"state", "on"}, {"group", "web"}})["ok"].get<bool>());
  cfg_.sessions.clear();
  EXPECT_FALSE(call({{"cmd", "maintenance"}, {"state", "on"}, {"group", "web"}})["ok"].get<bool>());
  auto r = call({{"cmd", "maintenance"}, {"state", "off"}, {"group", "web"}});
  EXPECT_TRUE(r["ok"].get<bool>()) << r;
  EXPECT_TRUE(store_.entries().empty());
}

TEST_F(Commands, OnThatCannotBeWrittenIsAppliedAndReported) {
  fs_.write_error = "rename: Read-only file system";
  auto r = call({{"cmd", "maintenance"}, {"state", "on"}, {"group", "web"}});
  EXPECT_FALSE(r["ok"].get<bool>());
  EXPECT_EQ(r["applied"], true);
  EXPECT_EQ(r["persisted"], false);
  EXPECT_NE(r["error"].get<std::string>().find("will not survive a restart"), std::string::npos);
  ASSERT_EQ(applied_.size(), 1u);  // in force all the same
  EXPECT_EQ(applied_[0].group, "web");
  r = call({{"cmd", "maintenance"}, {"state", "off"}, {"group", "web"}});
  EXPECT_FALSE(r["ok"].get<bool>());
  EXPECT_NE(r["error"].get<std::string>().find("maintenance stays on"), std::string::npos);
  ASSERT_EQ(applied_.size(), 1u);  // off refused: the engine still holds web
}

TEST_F(Commands, DrainWithoutCounterSaysSo) {
  auto r = call({{"cmd", "drain"}, {"reason", "reboot"}});
  ASSERT_TRUE(r["ok"].get<bool>()) << r;
  EXPECT_EQ(r["maintenance"][0]["drain"], true);
  EXPECT_EQ(r["drain"]["draining"], true);
  EXPECT_TRUE(r["drain"]["connections"].is_null());
  EXPECT_NE(r["drain"]["reason"].get<std::string>().find("no way to count connections"),
            std::string::npos);
  EXPECT_EQ(applied_[0].reason, "drain by alice: reboot");
  auto st = call({{"cmd", "drain-status"}});
  EXPECT_EQ(st["draining"], true);
  EXPECT_EQ(st["drains"][0]["scope"], "all");
  r = call({{"cmd", "undrain"}});
  ASSERT_TRUE(r["ok"].get<bool>()) << r;
  EXPECT_TRUE(applied_.empty());
  st = call({{"cmd", "drain-status"}});
  EXPECT_EQ(st["draining"], false);
}

// After a restart mid-drain the drain is still a drain: counted again,
// reported as restored from the state file, and `drain --wait` (drain on the
// same scope, then drain-status) follows it with the original start time.
TEST(DrainAfterRestart, ResumedFromTheStateFileAndFollowable) {
  FakeFs fs;
  {
    MaintenanceStore first("/state", fs.io());
    first.load();
    first.set_on("all", MaintenanceCaller{1001, "alice"}, "reboot", true);
  }
  const std::string started = "2026-12-02T13:09:51Z";
  fs.now += std::chrono::minutes(3);  // the daemon restarts later
  MaintenanceStore store("/state", fs.io());
  store.load();
  ASSERT_EQ(store.entries().size(), 1u);
  ASSERT_TRUE(store.entries()[0].drain);
  EXPECT_EQ(store.scopes()[0].reason, "drain (state file) by alice: reboot");

  boost::asio::io_context io;
  ConnectionSampler sampler(io, ConnectionSource{"/run/h.sock", "[drain] haproxy_socket", {}},
                            nullptr);
  EXPECT_TRUE(resume_drains(sampler, store));
  EXPECT_TRUE(sampler.draining());

  config::Config cfg;
  ctl::Dispatcher d;
  MaintenanceDeps deps;
  deps.set_maintenance = [](std::vector<engine::MaintenanceScope> m) {
    return engine::HoldResult{m.size(), {}};
  };
  deps.sessions = [] { return std::vector<engine::SessionSnapshot>{}; };
  deps.now = [&fs] { return fs.now; };
  register_maintenance_commands(d, store, sampler, cfg, deps, nullptr);
  ctl::Caller root;
  root.credentials.known = true;
  root.credentials.uid = 0;
  root.user = "root";
  auto call = [&](const json& req) { return json::parse(d.handle(req.dump(), root)); };

  auto st = call({{"cmd", "drain-status"}});
  EXPECT_EQ(st["draining"], true);
  ASSERT_EQ(st["drains"].size(), 1u);
  EXPECT_EQ(st["drains"][0]["origin"], "state-file");
  EXPECT_EQ(st["drains"][0]["started"], started);
  EXPECT_EQ(st["source"]["socket"], "/run/h.sock");  // countable: --wait can follow
  auto status = call({{"cmd", "status"}});
  EXPECT_EQ(status["drain"]["drains"][0]["origin"], "state-file");

  auto r = call({{"cmd", "drain"}, {"reason", "reboot"}});
  ASSERT_TRUE(r["ok"].get<bool>()) << r;
  EXPECT_EQ(r["drain"]["draining"], true);
  EXPECT_EQ(r["drain"]["drains"][0]["started"], started);  // the same drain, not a new one
  EXPECT_EQ(r["drain"]["drains"][0]["origin"], "command");
  EXPECT_TRUE(sampler.draining());
  sampler.stop();
}

TEST(DrainAfterRestart, PlainMaintenanceIsNotADrain) {
  FakeFs fs;
  {
    MaintenanceStore first("/state", fs.io());
    first.load();
    first.set_on("all", MaintenanceCaller{1001, "alice"}, "rack", false);
  }
  MaintenanceStore store("/state", fs.io());
  store.load();
  boost::asio::io_context io;
  ConnectionSampler sampler(io, ConnectionSource{"/run/h.sock", "[drain] haproxy_socket", {}},
                            nullptr);
  EXPECT_FALSE(resume_drains(sampler, store));
  EXPECT_FALSE(sampler.draining());
  EXPECT_FALSE(drain_status_json(sampler, store.entries(), fs.now)["draining"].get<bool>());
}

TEST_F(Commands, StatusSaysWhyNotInRotation) {
  engine::SessionSnapshot s;
  s.peer = "198.18.0.1";
  s.group = "web";
  s.state = core::wire::State::Down;
  s.hold = core::Hold::Down;
  s.hold_source = engine::HoldSource::Maintenance;
  s.hold_reason = "maintenance by alice: kernel";
  sessions_ = {s};
  call({{"cmd", "maintenance"}, {"state", "on"}, {"reason", "kernel"}});
  auto r = call({{"cmd", "status"}});
  ASSERT_TRUE(r["ok"].get<bool>()) << r;
  EXPECT_EQ(r["in_rotation"], false);
  EXPECT_EQ(r["sessions"]["up"], 0);
  EXPECT_EQ(r["sessions"]["total"], 1);
  ASSERT_EQ(r["groups"].size(), 1u);
  const json& g = r["groups"][0];
  EXPECT_EQ(g["name"], "web");
  EXPECT_EQ(g["signal"], "down");
  EXPECT_EQ(g["sending"]["down"], 1);
  EXPECT_EQ(g["maintenance"]["user"], "alice");
  EXPECT_EQ(g["maintenance"]["origin"], "command");
  EXPECT_NE(r["summary"].get<std::string>().find("kernel"), std::string::npos);
  EXPECT_NE(g["why_not"][0].get<std::string>().find("maintenance (all) by alice"),
            std::string::npos);
  sessions_[0].state = core::wire::State::Up;
  sessions_[0].hold = core::Hold::None;
  call({{"cmd", "maintenance"}, {"state", "off"}});
  r = call({{"cmd", "status"}});
  EXPECT_EQ(r["in_rotation"], true);
  EXPECT_EQ(r["summary"], "in rotation");
  EXPECT_EQ(r["groups"][0]["signal"], "up");
}

// ---------------------------------------------------------------- show stat

TEST(FrontendConnections, SumsCurrentSessionsOfFrontendsOnly) {
  const std::string csv =
      "# pxname,svname,qcur,qmax,scur,smax,slim,stot,status\n"
      "fe_http,FRONTEND,,,3,10,100,50,OPEN\n"
      "fe_tls,FRONTEND,,,2,4,100,9,OPEN\n"
      "be_app,srv1,0,0,5,9,,40,UP\n"
      "be_app,BACKEND,0,0,5,9,10,40,UP\n";
  auto f = health::sum_frontend_connections(csv);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->current, 5u);
  EXPECT_EQ(f->frontends, 2u);
  EXPECT_FALSE(health::sum_frontend_connections("Unknown command\n"));
  EXPECT_FALSE(health::sum_frontend_connections("# pxname,svname\nfe,FRONTEND\n"));
  EXPECT_FALSE(health::sum_frontend_connections("# pxname,svname,scur\nfe,FRONTEND,x\n"));
  auto none = health::sum_frontend_connections("# pxname,svname,scur\n");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->frontends, 0u);
}

// [drain] frontends: the monitor-uri / stats frontend the health check hits
// is not a client connection a drain waits for.
TEST(FrontendConnections, OnlyTheNamedFrontendsCount) {
  const std::string csv =
      "# pxname,svname,scur\n"
      "fe_http,FRONTEND,3\n"
      "fe_monitor,FRONTEND,1\n"
      "fe_tls,FRONTEND,2\n"
      "fe_http,BACKEND,7\n";
  auto f = health::sum_frontend_connections(csv, {"fe_http", "fe_tls"});
  ASSERT_TRUE(f);
  EXPECT_EQ(f->current, 5u);
  EXPECT_EQ(f->frontends, 2u);
  EXPECT_TRUE(f->missing.empty());
  // A name HAProxy does not have is reported, never counted as 0.
  auto typo = health::sum_frontend_connections(csv, {"fe_htp", "fe_tls"});
  ASSERT_TRUE(typo);
  EXPECT_EQ(typo->missing, std::vector<std::string>{"fe_htp"});
  EXPECT_EQ(health::sum_frontend_connections(csv)->current, 6u);  // default: every frontend
}

TEST(ConnectionSourceChoice, FrontendsAreShownWithTheSource) {
  config::Config cfg;
  cfg.drain.haproxy_socket = "/run/h.sock";
  cfg.drain.frontends = {"fe_http", "fe_tls"};
  EXPECT_EQ(connection_source(cfg).frontends, cfg.drain.frontends);
  boost::asio::io_context io;
  ConnectionSampler sampler(io, connection_source(cfg), nullptr);
  const json d = drain_status_json(sampler, {}, std::chrono::system_clock::now());
  EXPECT_EQ(d["source"]["frontends"], json::array({"fe_http", "fe_tls"}));
  EXPECT_NE(d["source"]["method"].get<std::string>().find("frontends fe_http, fe_tls"),
            std::string::npos)
      << d.dump();
  cfg.drain.frontends.clear();
  ConnectionSampler all(io, connection_source(cfg), nullptr);
  EXPECT_EQ(drain_status_json(all, {}, std::chrono::system_clock::now())["source"]["frontends"],
            "all");
}

TEST(ConnectionSourceChoice, DrainKeyThenFirstSocketCheck) {
  config::Config cfg;
  EXPECT_EQ(connection_source(cfg).socket, "");
  config::CheckSpec http;
  http.name = "web";
  http.type = config::CheckType::HaproxyHttp;
  config::CheckSpec sock;
  sock.name = "sock";
  sock.type = config::CheckType::HaproxySocket;
  sock.socket = "/run/haproxy.sock";
  cfg.checks = {http, sock};
  EXPECT_EQ(connection_source(cfg).socket, "/run/haproxy.sock");
  EXPECT_EQ(connection_source(cfg).how, "check sock");
  cfg.drain.haproxy_socket = "/run/other.sock";
  EXPECT_EQ(connection_source(cfg).socket, "/run/other.sock");
  EXPECT_EQ(connection_source(cfg).how, "[drain] haproxy_socket");
}

// ---------------------------------------------------------------- config keys

TEST(MaintenanceConfig, StateDirAndDrainSocket) {
  auto d = config::load_string("", "t.toml");
  ASSERT_TRUE(d.config);
  EXPECT_EQ(d.config->daemon.state_dir, "/var/lib/bfd-beacon");
  EXPECT_EQ(d.config->drain.haproxy_socket, "");
  auto r = config::load_string(
      "[daemon]\nstate_dir = \"/srv/beacon\"\n[drain]\nhaproxy_socket = \"/run/h.sock\"\n",
      "t.toml");
  ASSERT_TRUE(r.config) << (r.errors.empty() ? "" : r.errors[0].format());
  EXPECT_EQ(r.config->daemon.state_dir, "/srv/beacon");
  EXPECT_EQ(r.config->drain.haproxy_socket, "/run/h.sock");
  EXPECT_TRUE(r.config->drain.frontends.empty());  // default: every frontend
  auto fe = config::load_string("[drain]\nfrontends = [\"fe_http\", \"fe_tls\"]\n", "t.toml");
  ASSERT_TRUE(fe.config) << (fe.errors.empty() ? "" : fe.errors[0].format());
  EXPECT_EQ(fe.config->drain.frontends, (std::vector<std::string>{"fe_http", "fe_tls"}));
  struct Bad {
    const char* text;
    const char* message;
  };
  for (const Bad& b :
       {Bad{"[daemon]\nstate_dir = \"state\"\n",
            "t.toml:2:13: daemon.state_dir: must be an absolute directory path"},
        Bad{"[daemon]\nstate_dir = \"\"\n",
            "t.toml:2:13: daemon.state_dir: must be an absolute directory path"},
        Bad{"[drain]\nhaproxy_socket = \"\"\n",
            "t.toml:2:18: drain.haproxy_socket: must be a non-empty path"},
        Bad{"[drain]\nsocket = \"/x\"\n", "t.toml:2:1: unknown key \"socket\" in [drain]"},
        Bad{"[drain]\nfrontends = \"fe\"\n",
            "t.toml:2:13: drain.frontends: expected an array of HAProxy frontend names"},
        Bad{"[drain]\nfrontends = []\n",
            "t.toml:2:13: drain.frontends: must name at least one frontend"},
        Bad{"[drain]\nfrontends = [\"fe\", 1]\n",
            "t.toml:2:20: drain.frontends[1]: expected a frontend name (a string), got an "
            "integer"},
        Bad{"[drain]\nfrontends = [\"\"]\n", "t.toml:2:14: drain.frontends[0]: must not be empty"},
        Bad{"[drain]\nfrontends = [\"fe x\"]\n",
            "t.toml:2:14: drain.frontends[0]: \"fe x\" is not a valid HAProxy frontend name"},
        Bad{"[drain]\nfrontends = [\"fe\", \"fe\"]\n",
            "t.toml:2:20: drain.frontends[1]: frontend \"fe\" is listed twice"},
        Bad{"drain = 1\n", "t.toml:1:9: drain: expected a table"}}) {
    SCOPED_TRACE(b.text);
    auto e = config::load_string(b.text, "t.toml");
    EXPECT_FALSE(e.config);
    ASSERT_FALSE(e.errors.empty());
    EXPECT_EQ(e.errors[0].format().rfind(b.message, 0), 0u) << e.errors[0].format();
  }
  auto ex = config::load_file(std::string(BEACON_SOURCE_DIR) + "/deploy/examples/beacon.toml");
  ASSERT_TRUE(ex.config);
  EXPECT_EQ(ex.config->daemon.state_dir, "/var/lib/bfd-beacon");
}

}  // namespace
}  // namespace beacon::app
