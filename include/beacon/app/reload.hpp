// Configuration reload (SIGHUP and `bfdctl reload`): load the daemon's own
// --config file again, and if it is valid apply the difference to the
// engine, the health manager and the access policy, with systemd told
// RELOADING=1 ... READY=1 around it.
//
//  - An invalid file changes nothing: every error is logged as
//    file:line:column: message and returned to the caller.
//  - Settings that need a restart keep their running value and come back as
//    "needs a restart: ..." warnings (config/diff.hpp).
//  - One reload at a time: all of them run on the ops loop. A SIGHUP while
//    one runs is queued once (more SIGHUPs meanwhile fold into that one).
//  - The control socket never names a file: a request reloads the path the
//    daemon was started with, nothing else.
//
// Reloader does no I/O of its own: loading, the engine, the health manager,
// systemd and the clock come in as ReloadHooks, so the orchestration is
// tested with fakes.
//
// Threads: everything on the ops loop, except request_from_signal() (main).
#pragma once

#include <spdlog/logger.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "beacon/config/config.hpp"
#include "beacon/config/diff.hpp"
#include "beacon/core/time.hpp"
#include "beacon/engine/types.hpp"
#include "beacon/health/manager.hpp"

namespace beacon::ctl {
class Dispatcher;
}
namespace beacon::engine {
class Engine;
}

namespace beacon::app {

// Reload statistics for metrics (bfd_beacon_config_reloads_total{result},
// bfd_beacon_config_last_reload_timestamp_seconds). Ops loop only; read it
// with Reloader::stats().
struct ReloadStats {
  std::uint64_t ok = 0;      // result="ok": the new file is in force
  std::uint64_t failed = 0;  // result="failed": invalid file or refused; nothing changed
  // Wall-clock time the last reload (either result) finished; nullopt: none yet.
  std::optional<std::chrono::system_clock::time_point> last_at;
  bool last_ok = false;
  std::string last_message;  // summary line, or the first error
  core::Duration last_duration{0};
};

struct ReloadOutcome {
  bool ok = false;
  std::string trigger;                // "SIGHUP", "bfdctl"
  std::vector<std::string> errors;    // "file:line:column: message", or engine/health refusals
  std::vector<std::string> warnings;  // "needs a restart: ...", failed additions
  std::vector<std::string> changes;   // one line per item that changed
  std::string summary;                // "sessions: 1 added, ...; checks: ..."
  config::ConfigDiff diff;
  engine::ReloadResult engine;
  core::Duration duration{0};

  // {"errors":[...],"warnings":[...],"changes":[...],"summary":"...",
  //  "sessions":{"added":1,...},"checks":{...},"groups":{...},
  //  "accept_rules":"unchanged"|"replaced","duration_ms":3.2}
  nlohmann::json to_json() const;
};

struct ReloadHooks {
  std::function<config::LoadResult(const std::string& path)> load;
  std::function<engine::ReloadResult(const config::Config&)> engine;
  std::function<engine::ReloadProgress()> progress;
  std::function<health::ReconfigureResult(const config::Config&)> health;
  // Re-resolves read_group/admin_group (called only when they changed).
  std::function<void(const config::Config&)> access;
  std::function<void(const std::string& level)> log_level;
  std::function<void()> reloading;  // systemd RELOADING=1 + MONOTONIC_USEC
  std::function<void()> reloaded;   // systemd READY=1
  // After every attempt, ok or not, once stats() counts it (e.g. the metrics
  // republish, so a scrape right after `bfdctl reload` sees it).
  std::function<void()> finished;
  std::function<core::TimePoint()> now;                         // steady
  std::function<std::chrono::system_clock::time_point()> wall;  // for ReloadStats::last_at
};

class Reloader {
 public:
  // `running` is the configuration the daemon started with; `path` its
  // --config file. `log` may be null.
  Reloader(std::string path, config::Config running, ReloadHooks hooks,
           std::shared_ptr<spdlog::logger> log);

  // Ops loop: one reload, start to end. Never throws.
  ReloadOutcome reload(std::string_view trigger);

  // Main thread (sigwait loop): posts a reload to `ops` unless one is
  // already queued. Never blocks.
  void request_from_signal(boost::asio::io_context& ops);

  // Ops loop.
  const ReloadStats& stats() const { return stats_; }
  const config::Config& running() const { return running_; }
  engine::ReloadProgress progress() const;
  const std::string& path() const { return path_; }

  // "reload" {"wait": bool} (Admin, audited) and "reload-status" (Read).
  // Without wait the response comes once the file is parsed and applied to
  // engine and health; with wait it also carries "settled" and "pending"
  // (removed sessions still signalling, Poll sequences still running), and
  // bfdctl follows reload-status until settled: the ops loop never waits.
  void register_commands(ctl::Dispatcher& d);

 private:
  ReloadOutcome attempt(std::string_view trigger);
  void fail(ReloadOutcome& out, core::TimePoint t0);

  std::string path_;
  config::Config running_;
  ReloadHooks hooks_;
  std::shared_ptr<spdlog::logger> log_;
  ReloadStats stats_;
  std::atomic<bool> signal_queued_{false};
};

class SystemdNotifier;

// The daemon's Reloader: load_file, Engine::reload / reload_progress,
// HealthManager::reconfigure, the access policy of `dispatcher` re-resolved,
// the logger's level, `systemd` (may be null) around it. Every reference
// must outlive the reloader; all of it is used on the ops loop.
std::unique_ptr<Reloader> make_daemon_reloader(
    std::string path, const config::Config& running, engine::Engine& engine,
    health::HealthManager& health, ctl::Dispatcher& dispatcher, SystemdNotifier* systemd,
    std::shared_ptr<spdlog::logger> log, std::function<void()> finished = {});

// {"removing":1,"polls":0,"settled":false}
nlohmann::json progress_to_json(const engine::ReloadProgress& p);
// {"ok":3,"failed":1,"last_at":"2026-12-02T14:03:11Z","last_ok":true,...}
nlohmann::json stats_to_json(const ReloadStats& s);

}  // namespace beacon::app
