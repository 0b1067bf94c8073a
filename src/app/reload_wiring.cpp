// The daemon's reload hooks: the real loader, engine, health manager,
// access policy, logger and systemd notifier behind Reloader (reload.hpp).
#include <spdlog/spdlog.h>

#include <chrono>

#include "beacon/app/reload.hpp"
#include "beacon/app/systemd_wiring.hpp"
#include "beacon/ctl/access.hpp"
#include "beacon/ctl/protocol.hpp"
#include "beacon/engine/engine.hpp"

namespace beacon::app {

std::unique_ptr<Reloader> make_daemon_reloader(
    std::string path, const config::Config& running, engine::Engine& engine,
    health::HealthManager& health, ctl::Dispatcher& dispatcher, SystemdNotifier* systemd,
    std::shared_ptr<spdlog::logger> log, std::function<void()> finished) {
  ReloadHooks h;
  h.finished = std::move(finished);
  h.load = [](const std::string& p) {
    config::LoadResult r = config::load_file(p);
    if (r.errors.empty()) {
      if (std::string why = config::file_safety_problem(p); !why.empty()) {
        r.errors.push_back(config::ConfigError{p, 0, 0, why});
      }
    }
    return r;
  };
  h.engine = [&engine](const config::Config& c) { return engine.reload(c); };
  h.progress = [&engine] { return engine.reload_progress(); };
  h.health = [&health](const config::Config& c) { return health.reconfigure(c); };
  h.access = [&dispatcher, log](const config::Config& c) {
    dispatcher.enable_access_control(
        ctl::resolve_access_policy(c.daemon.read_group, c.daemon.admin_group, *log), log);
  };
  h.log_level = [log](const std::string& level) {
    log->set_level(spdlog::level::from_str(level == "warning" ? "warn" : level));
  };
  if (systemd != nullptr) {
    h.reloading = [systemd] { systemd->reloading(); };
    h.reloaded = [systemd] { systemd->reloaded(); };
  }
  h.now = [] { return core::SteadyClock{}.now(); };
  h.wall = [] { return std::chrono::system_clock::now(); };
  return std::make_unique<Reloader>(std::move(path), running, std::move(h), std::move(log));
}

}  // namespace beacon::app
