// Glue between the health manager (ops loop), the engine and the control
// socket: the Sink that turns group decisions into engine holds and the
// "checks" / "groups" control commands (and the "debug-stall-ops" test hook).
// bfdctl's tables for them live in ctl/format.hpp.
#pragma once

#include <functional>
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
// With `sessions`, each group also gets "signal" (group_signal_json).
nlohmann::json groups_to_json(const std::vector<health::GroupStatus>& groups,
                              const std::vector<engine::SessionSnapshot>* sessions = nullptr);

// What the sessions of `group` send now, over every hold source (health,
// operator maintenance, set-state, fail-safe): {"sessions": N, "hold":
// "none" | "down" | "admin-down" | "mixed" | null (no session), and when held
// the same way everywhere "diag", "source" (hold source name), "reason"}.
nlohmann::json group_signal_json(const std::string& group,
                                 const std::vector<engine::SessionSnapshot>& sessions);

using SessionsFn = std::function<std::vector<engine::SessionSnapshot>()>;

// Registers "checks", "groups" and (BEACON_TEST_HOOKS builds only)
// "debug-stall-ops" {"ms": 1..60000}. `health` must outlive `d`. `sessions`
// (may be empty) reads the engine's published sessions for "groups"' signal.
void register_health_commands(ctl::Dispatcher& d, health::HealthManager& health,
                              SessionsFn sessions = {});

}  // namespace beacon::app
