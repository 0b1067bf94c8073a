// Replays proto/ctl/v1/examples/*.txt through the dispatcher with a fake
// backend, so the documented exchanges stay true.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "beacon/app/maintenance_wiring.hpp"
#include "beacon/ctl/protocol.hpp"
#include "fake_backend.hpp"

namespace beacon::ctl {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class ExampleBackend : public testing::FakeBackend {
 public:
  engine::HoldResult set_hold(engine::HoldSource source, const engine::Selector& sel,
                              core::Hold hold, std::uint8_t diag) override {
    if (sel.kind == engine::Selector::Kind::Peer && sel.value == "198.18.9.9") {
      return {0, "no session with peer 198.18.9.9"};
    }
    return FakeBackend::set_hold(source, sel, hold, diag);
  }
};

void expect_matches(const json& expected, const json& actual) {
  ASSERT_TRUE(actual.is_object());
  for (const auto& [key, value] : expected.items()) {
    ASSERT_TRUE(actual.contains(key)) << key << " missing in " << actual;
    if (key == "version") continue;  // follows the project version
    if (key == "error" && value.get<std::string>().ends_with("...")) {
      std::string prefix = value.get<std::string>();
      prefix.resize(prefix.size() - 3);
      EXPECT_EQ(actual[key].get<std::string>().rfind(prefix, 0), 0u) << actual[key];
      continue;
    }
    EXPECT_EQ(actual[key], value) << key;
  }
  EXPECT_EQ(actual.size(), expected.size()) << actual;
}

TEST(Examples, DocumentedExchangesHold) {
  ExampleBackend backend;
  backend.sessions_ = {testing::sample_session()};
  {
    // counters.txt: one flap by timeout and the handshake before it.
    auto& c = backend.sessions_[0].counters;
    using S = core::wire::State;
    auto at = [](S s) { return static_cast<std::size_t>(s); };
    c.transitions[at(S::Down)][at(S::Init)] = 2;
    c.transitions[at(S::Init)][at(S::Up)] = 2;
    c.transitions[at(S::Up)][at(S::Down)] = 1;
    c.flaps[static_cast<std::size_t>(core::FlapCause::Timeout)] = 1;
    c.drops[static_cast<std::size_t>(core::wire::DropReason::BadTtl)] = 4;
  }
  backend.stats_.rx_datagrams = 100;
  backend.stats_.tx_packets = 120;
  backend.stats_.sessions = 1;
  backend.stats_.timer_fires = 4;
  backend.stats_.timer_lateness_total = core::Duration{400};
  backend.stats_.timer_lateness_max = core::Duration{250};
  backend.stats_.drops[static_cast<std::size_t>(core::wire::DropReason::BadTtl)] = 4;
  Dispatcher dispatcher(backend);
  // maintenance.txt, on a dispatcher of its own (the other files list the
  // base commands in their errors): an in-memory state directory, a fixed clock, no HAProxy
  // socket, the fake backend's sessions.
  std::map<std::string, std::string> files;
  app::MaintenanceIo io;
  io.read = [&files](const std::string& p) {
    app::MaintenanceIo::ReadResult r;
    if (auto it = files.find(p); it != files.end()) r = {true, it->second, {}};
    return r;
  };
  io.write = [&files](const std::string& p, const std::string& c) {
    files[p] = c;
    return std::string();
  };
  const auto t = std::chrono::system_clock::from_time_t(1'796'220'191);  // 2026-12-02T14:03:11Z
  io.now = [t] { return t; };
  app::MaintenanceStore store("/var/lib/bfd-beacon", io);
  store.load();
  boost::asio::io_context ops;
  app::ConnectionSampler sampler(ops, {}, nullptr);
  config::Config cfg;
  config::SessionSpec web;
  web.group = "web";
  cfg.sessions.push_back(web);
  app::MaintenanceDeps deps;
  deps.set_maintenance = [&backend](std::vector<engine::MaintenanceScope> m) {
    return engine::HoldResult{m.empty() ? 0u : backend.sessions_.size(), {}};
  };
  deps.sessions = [&backend] { return backend.sessions_; };
  deps.now = [t] { return t; };
  Dispatcher maintenance(backend);
  app::register_maintenance_commands(maintenance, store, sampler, cfg, deps, nullptr);

  fs::path dir = fs::path(BEACON_SOURCE_DIR) / "proto/ctl/v1/examples";
  int exchanges = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() != ".txt") continue;
    SCOPED_TRACE(entry.path().filename().string());
    std::ifstream in(entry.path());
    std::string line, pending;
    while (std::getline(in, line)) {
      if (line.rfind("> ", 0) == 0) {
        pending = line.substr(2);
      } else if (line.rfind("< ", 0) == 0) {
        SCOPED_TRACE(pending);
        ASSERT_FALSE(pending.empty()) << "response without request";
        Dispatcher& d = entry.path().filename() == "maintenance.txt" ? maintenance : dispatcher;
        expect_matches(json::parse(line.substr(2)), json::parse(d.handle(pending)));
        pending.clear();
        ++exchanges;
      }
    }
  }
  EXPECT_GE(exchanges, 15);
}

}  // namespace
}  // namespace beacon::ctl
