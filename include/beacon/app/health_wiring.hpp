// Glue between the health manager (ops loop), the engine and the control
// socket: the Sink that turns group decisions into engine holds and the
// "checks" / "groups" control commands (and the "debug-stall-ops" test hook).
// bfdctl's tables for them live in ctl/format.hpp.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "beacon/ctl/protocol.hpp"
#include "beacon/engine/engine.hpp"
#include "beacon/health/manager.hpp"

namespace beacon::app {

// The engine's hold for a group decision when it depends on each session's
// signals: Unhealthy -> Unhealthy, Maintenance -> Maintenance (or
// MaintenanceFailing when a check also fails); nullopt for Unknown and
// Healthy, which are the decision's own hold and diag for every session.
std::optional<engine::HoldCause> hold_cause(const health::GroupDecision& d);

// apply -> engine.set_hold(HoldSource::Health, {Group, name}, hold_cause(d), reason) or,
// for start-up and healthy, engine.set_hold(Health, {Group, name}, hold, diag, reason);
// heartbeat -> engine.heartbeat(). `engine` must outlive the sink. The sink is
// called on the ops loop; set_hold blocks it only for the engine's short post.
health::Sink make_engine_sink(engine::Engine& engine, std::shared_ptr<spdlog::logger> log);

nlohmann::json checks_to_json(const std::vector<health::CheckStatus>& checks);
nlohmann::json groups_to_json(const std::vector<health::GroupStatus>& groups);

// Registers "checks", "groups" and (BEACON_TEST_HOOKS builds only)
// "debug-stall-ops" {"ms": 1..60000}. `health` must outlive `d`.
void register_health_commands(ctl::Dispatcher& d, health::HealthManager& health);

}  // namespace beacon::app
