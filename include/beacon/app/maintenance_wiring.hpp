// Operator maintenance, drain and status on the control socket (ops loop):
//
//   maintenance {"state":"on"|"off","group"?:G,"reason"?:TEXT}   (state-changing)
//   drain       {"group"?:G,"reason"?:TEXT}    maintenance on + a drain in progress
//   undrain     {"group"?:G}                   maintenance off, the drain ends
//   drain-status                               HAProxy's current connections (read-only)
//   status                                     "is this box in rotation, and why not" (read-only)
//
// Every change goes to the MaintenanceStore first (state file, see
// maintenance.hpp for the memory/disk rule), then to the engine as the whole
// set of maintenance scopes (Engine::set_maintenance).
//
// Connections are counted by a ConnectionSampler: the HAProxy runtime socket
// is asked asynchronously on the ops loop (never blocking it: connect, write
// and read are asynchronous, one deadline per run) every 250 ms while a drain
// is in progress or someone asked within the last 5 s; drain-status answers
// at once with the latest count, when it was obtained and how.
//
// Thread: the ops loop only.
#pragma once

#include <spdlog/logger.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "beacon/app/maintenance.hpp"
#include "beacon/config/config.hpp"
#include "beacon/ctl/protocol.hpp"
#include "beacon/engine/types.hpp"
#include "beacon/health/manager.hpp"

namespace beacon::app {

// Which socket drain counts on: [drain] haproxy_socket, else the first
// haproxy-socket [[check]]'s; `socket` "" when there is none. `how` says
// which ("[drain] haproxy_socket", "check haproxy-sock"). `frontends`:
// [drain] frontends, the frontends counted (empty: all).
struct ConnectionSource {
  std::string socket;
  std::string how;
  std::vector<std::string> frontends;
};
ConnectionSource connection_source(const config::Config& cfg);

class ConnectionSampler {
 public:
  struct Sample {
    std::optional<std::uint64_t> connections;  // nullopt: the query failed (error)
    std::string error;
    std::chrono::system_clock::time_point at{};  // wall time the answer came
    std::chrono::steady_clock::time_point steady_at{};
    core::Duration latency{0};
  };

  // `socket` "" : nothing to count with (every answer says so).
  ConnectionSampler(boost::asio::io_context& ops, ConnectionSource source,
                    std::shared_ptr<spdlog::logger> log);
  ~ConnectionSampler();
  ConnectionSampler(const ConnectionSampler&) = delete;
  ConnectionSampler& operator=(const ConnectionSampler&) = delete;

  // Keep counting for the next 5 s (and start at once if idle).
  void want();
  // Count continuously while a drain is in progress.
  void set_draining(bool on);
  void stop();

  bool available() const { return !source_.socket.empty(); }
  bool draining() const;
  const ConnectionSource& source() const { return source_; }
  const std::optional<Sample>& last() const { return last_; }

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
  ConnectionSource source_;
  std::optional<Sample> last_;
  friend struct Impl;
};

// At start-up: a drain the state file recorded is still in progress (the
// box was withdrawn mid-drain and HAProxy may still hold connections), so
// the sampler counts again and drain-status / status report it, restored
// from the state file; `bfdctl drain --wait` on that scope follows the count
// with the drain's original start. Returns whether a drain was resumed.
bool resume_drains(ConnectionSampler& sampler, const MaintenanceStore& store);

// The drain-status answer from a sampler's state (pure given `now`).
nlohmann::json drain_status_json(const ConnectionSampler& sampler,
                                 const std::vector<MaintenanceEntry>& entries,
                                 std::chrono::system_clock::time_point now);

// What `status` is built from; every reader may be empty (no health manager).
struct StatusInput {
  std::vector<engine::SessionSnapshot> sessions;
  std::vector<health::CheckStatus> checks;
  std::vector<health::GroupStatus> groups;
  std::vector<MaintenanceEntry> maintenance;
  std::string state_file;
  bool state_file_damaged = false;
  nlohmann::json drain;                      // drain_status_json()
  std::vector<std::string> declared_groups;  // [[group]] names, config order
  std::chrono::system_clock::time_point now{};
};
// Pure: the "status" answer. See proto/ctl/v1/README.md for its fields.
nlohmann::json build_status(const StatusInput& in);

// What the commands need of the daemon (the engine and the health manager);
// tests pass fakes.
struct MaintenanceDeps {
  std::function<engine::HoldResult(std::vector<engine::MaintenanceScope>)> set_maintenance;
  std::function<std::vector<engine::SessionSnapshot>()> sessions;
  std::function<std::vector<health::CheckStatus>()> checks;    // may be empty
  std::function<std::vector<health::GroupStatus>()> groups;    // may be empty
  std::function<std::chrono::system_clock::time_point()> now;  // default system_clock
};

// Registers maintenance, drain, undrain, drain-status and status. `store`,
// `sampler` and `cfg` must outlive `d`.
void register_maintenance_commands(ctl::Dispatcher& d, MaintenanceStore& store,
                                   ConnectionSampler& sampler, const config::Config& cfg,
                                   MaintenanceDeps deps, std::shared_ptr<spdlog::logger> log);

}  // namespace beacon::app
