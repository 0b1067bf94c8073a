// The "counters" control command and bfdctl's table for it.
//
//   -> {"cmd":"counters"}                 every session
//   -> {"cmd":"counters","peer":"198.18.0.1"}
//   <- {"ok":true,"sessions":[{"peer":..., "packets":{"rx":N,"tx":N},
//       "drops":{REASON:N,...}, "transitions":{FROM:{TO:N,...},...},
//       "flaps":{"timeout":N,"peer-down":N,"peer-admin-down":N,"local-hold":N}},
//       ...], "engine":{"drops":{REASON:N,...}}}
// Field list: proto/ctl/v1/README.md. Pure apart from register_*, which
// reads through the Backend (ops loop).
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "beacon/ctl/backend.hpp"
#include "beacon/ctl/protocol.hpp"
#include "beacon/engine/types.hpp"

namespace beacon::ctl {

// The response fields. `peer` matches a session's peer as bfdctl shows it
// ("fe80::1%veth0") or its address alone ("fe80::1"); a peer that matches no
// session throws RequestError naming it.
nlohmann::json counters_to_json(const std::vector<engine::SessionSnapshot>& sessions,
                                const engine::EngineStats& stats,
                                const std::optional<std::string>& peer);

// Registers "counters" (read-only, optional "peer") over `backend`.
void register_counters_command(Dispatcher& d, Backend& backend);

// bfdctl's human form: one table of packets and flaps, one of transitions,
// one of drops (per session and engine-wide); zero rows are left out.
std::string format_counters(const nlohmann::json& response);

}  // namespace beacon::ctl
