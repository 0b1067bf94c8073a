// What the metrics exposition reads, and where it comes from.
//
// Two loops own the data; neither is ever called from a scrape:
//  - the engine loop publishes an engine::EngineSnapshot (sessions + stats)
//    every second (Engine::publish_every / Engine::published());
//  - the ops loop publishes an OpsSnapshot (health checks and groups, plus
//    whatever the optional providers below report) every second and at once
//    whenever a group's decision changes (OpsPublisher::poke()).
// The scrape (prometheus-cpp's exposer thread) only copies the two latest
// pointers and formats them.
//
// Providers are hooks for the parts of the daemon that live on the ops loop:
// each is called on the ops loop only, from OpsPublisher, so it may read
// ops-loop state without a lock. An empty provider exports its default, as
// listed with each.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "beacon/health/manager.hpp"

namespace beacon::metrics {

using WallTime = std::chrono::system_clock::time_point;

// Configuration reloads: bfd_beacon_config_reloads_total{result="success"|
// "failure"}, bfd_beacon_config_last_reload_timestamp_seconds and
// bfd_beacon_config_last_reload_successful (0/1).
// Default (no provider): both counters 0, the two last_reload series absent.
struct ReloadStatus {
  std::uint64_t succeeded = 0;
  std::uint64_t failed = 0;
  std::optional<WallTime> last;  // time of the last attempt; nullopt: none yet
  bool last_ok = true;
};

// Operator maintenance (bfdctl maintenance on / drain), one entry per
// maintained scope: bfd_beacon_maintenance_info{group, reason, set_by,
// source} 1 per entry, and bfd_beacon_group_maintenance{group} 1 for every
// group an entry covers. Default (no provider): no info series;
// group_maintenance then only follows the health verdict "maintenance".
struct MaintenanceEntry {
  std::string group;   // "" covers every group
  std::string reason;  // operator's text
  std::string set_by;  // user name
  std::string source;  // "command", "state-file", ...
  std::optional<WallTime> since;
};

// Called on the ops loop only (see the file comment).
struct Sources {
  std::function<std::vector<health::CheckStatus>()> checks;  // default: no check series
  std::function<std::vector<health::GroupStatus>()> groups;  // default: no group series
  std::function<ReloadStatus()> reloads;                     // default: see ReloadStatus
  // bfd_beacon_drain_in_progress (0/1). Default: 0.
  std::function<bool()> drain_in_progress;
  std::function<std::vector<MaintenanceEntry>()> maintenance;  // default: none
};

// What the ops loop publishes for the scrape.
struct OpsSnapshot {
  std::vector<health::CheckStatus> checks;
  std::vector<health::GroupStatus> groups;
  ReloadStatus reloads;
  bool drain_in_progress = false;
  std::vector<MaintenanceEntry> maintenance;
};

// Calls every provider that is set. Ops loop.
OpsSnapshot gather(const Sources& sources);

}  // namespace beacon::metrics
