// See health_wiring.hpp.
#include "beacon/app/health_wiring.hpp"

#include <chrono>
#include <optional>
#include <tuple>
#include <utility>

namespace beacon::app {
namespace {

using nlohmann::json;

double ms(core::Duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

}  // namespace

std::optional<engine::HoldCause> hold_cause(const health::GroupDecision& d) {
  switch (d.verdict) {
    case health::Verdict::Unhealthy:
      return engine::HoldCause::Unhealthy;
    case health::Verdict::Maintenance:
      return d.failing ? engine::HoldCause::MaintenanceFailing : engine::HoldCause::Maintenance;
    case health::Verdict::Unknown:
    case health::Verdict::Healthy:
      break;
  }
  return std::nullopt;
}

health::Sink make_engine_sink(engine::Engine& engine, std::shared_ptr<spdlog::logger> log) {
  health::Sink sink;
  sink.apply = [&engine, log](const std::string& group, const health::GroupDecision& d) {
    engine::Selector sel{engine::Selector::Kind::Group, group};
    // Unhealthy and maintenance go by cause so each session sends its own
    // signal (a [[session]] may override its group's); start-up (Down with
    // the group's diag) and healthy (released) are the same for every session.
    const auto cause = hold_cause(d);
    auto r = cause ? engine.set_hold(engine::HoldSource::Health, sel, *cause, d.reason)
                   : engine.set_hold(engine::HoldSource::Health, sel, d.hold, d.diag, d.reason);
    if (!r.error.empty() && log) log->warn("group {}: health hold refused: {}", group, r.error);
  };
  sink.heartbeat = [&engine] { engine.heartbeat(); };
  return sink;
}

json checks_to_json(const std::vector<health::CheckStatus>& checks) {
  json out = json::array();
  for (const auto& c : checks) {
    json j{{"name", c.name},
           {"type", c.type},
           {"state", c.known ? std::string(health::status_name(c.state)) : "unknown"},
           {"known", c.known},
           {"in_transition", c.in_transition},
           {"reason", c.reason},
           {"last_status", c.known ? json(health::status_name(c.last_status)) : json(nullptr)},
           {"last_reason", c.last_reason},
           {"last_latency_ms", ms(c.last_latency)},
           {"event_driven", c.event_driven},
           {"rise", c.rise},
           {"fall", c.fall},
           {"results", c.results}};
    j["current_connections"] = c.current_connections ? json(*c.current_connections) : json(nullptr);
    out.push_back(std::move(j));
  }
  return out;
}

json groups_to_json(const std::vector<health::GroupStatus>& groups,
                    const std::vector<engine::SessionSnapshot>* sessions) {
  json out = json::array();
  for (const auto& g : groups) {
    json j{{"name", g.name},
           {"verdict", health::verdict_name(g.decision.verdict)},
           {"hold", core::hold_name(g.decision.hold)},
           {"diag", g.decision.diag},
           {"reason", g.decision.reason},
           {"checks", g.checks}};
    if (sessions != nullptr) j["signal"] = group_signal_json(g.name, *sessions);
    out.push_back(std::move(j));
  }
  return out;
}

json group_signal_json(const std::string& group,
                       const std::vector<engine::SessionSnapshot>& sessions) {
  // The hold the engine applies is the strongest over every source (health,
  // operator maintenance, set-state, fail-safe), so the health decision alone
  // can say "none" while maintenance holds the group AdminDown.
  std::optional<std::tuple<core::Hold, std::uint8_t, engine::HoldSource, std::string>> first;
  bool mixed = false;
  std::size_t n = 0;
  for (const auto& s : sessions) {
    if (s.group != group) continue;
    ++n;
    const std::uint8_t diag = s.hold == core::Hold::None ? 0 : s.local_diag;
    const engine::HoldSource src =
        s.hold == core::Hold::None ? engine::HoldSource::Admin : s.hold_source;
    const std::string reason = s.hold == core::Hold::None ? "" : s.hold_reason;
    auto cur = std::make_tuple(s.hold, diag, src, reason);
    if (!first) {
      first = std::move(cur);
    } else if (std::get<0>(*first) != s.hold || std::get<1>(*first) != diag) {
      mixed = true;
    }
  }
  json j{{"sessions", n}};
  if (!first) {
    j["hold"] = nullptr;  // no session in the group: nothing is sent
    return j;
  }
  if (mixed) {
    j["hold"] = "mixed";
    return j;
  }
  const auto& [hold, diag, src, reason] = *first;
  j["hold"] = core::hold_name(hold);
  if (hold != core::Hold::None) {
    j["diag"] = diag;
    j["source"] = engine::hold_source_name(src);
    j["reason"] = reason;
  }
  return j;
}

void register_health_commands(ctl::Dispatcher& d, health::HealthManager& health,
                              SessionsFn sessions) {
  d.add("checks", {[&health](const json&) {
                     return json{{"checks", checks_to_json(health.checks())}};
                   },
                   {},
                   ctl::Access::Read});
  d.add("groups", {[&health, sessions = std::move(sessions)](const json&) {
                     if (!sessions) return json{{"groups", groups_to_json(health.groups())}};
                     const auto live = sessions();
                     return json{{"groups", groups_to_json(health.groups(), &live)}};
                   },
                   {},
                   ctl::Access::Read});
#ifdef BEACON_TEST_HOOKS
  d.add("debug-stall-ops", {[&health](const json& req) {
                              auto it = req.find("ms");
                              if (it == req.end() || !it->is_number_integer()) {
                                throw ctl::RequestError("\"ms\" must be an integer (1..60000)");
                              }
                              const auto v = it->get<std::int64_t>();
                              if (v < 1 || v > 60000) {
                                throw ctl::RequestError("\"ms\" must be within 1..60000");
                              }
                              health.test_stall(std::chrono::milliseconds(v));
                              return json{{"stalling_ms", v}};
                            },
                            {"ms"},
                            ctl::Access::Admin});
#endif
}

}  // namespace beacon::app
