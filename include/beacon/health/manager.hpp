// HealthManager: runs on the ops loop. Owns one probe + CheckPolicy per
// [[check]], schedules polled probes (interval, fast_interval while in
// transition), subscribes event-driven ones, and whenever a group's decision
// changes hands it to the sink (the engine: HoldSource::Health, group
// selector). It also calls heartbeat() every health.heartbeat_interval so the
// engine's fail-safe knows verdicts are still flowing.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <spdlog/logger.h>

#include "beacon/config/config.hpp"
#include "beacon/health/policy.hpp"

namespace beacon::health {

struct Sink {
  // Called on the ops loop when a group's decision changes (and once per group
  // at its first verdict).
  std::function<void(const std::string& group, const GroupDecision&)> apply;
  // Called every heartbeat_interval while the ops loop is alive.
  std::function<void()> heartbeat;
};

struct CheckStatus {
  std::string name, type;
  Status state = Status::Fail;
  bool known = false;
  bool in_transition = false;
  std::string reason;
  core::Duration last_latency{0};
  std::optional<std::uint64_t> current_connections;
};

struct GroupStatus {
  std::string name;
  GroupDecision decision;
  std::vector<std::string> checks;
};

class HealthManager {
 public:
  HealthManager(boost::asio::io_context& ops, const config::Config& cfg, Sink sink,
                std::shared_ptr<spdlog::logger> log);
  ~HealthManager();
  void start();
  void stop();
  // Ops loop only (the control socket handlers run there too).
  std::vector<CheckStatus> checks() const;
  std::vector<GroupStatus> groups() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace beacon::health
