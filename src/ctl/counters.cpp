// The "counters" command (see counters.hpp).
#include "beacon/ctl/counters.hpp"

#include <algorithm>
#include <array>

#include "beacon/core/session.hpp"
#include "beacon/core/wire.hpp"

namespace beacon::ctl {
namespace {

using core::wire::DropReason;
using core::wire::State;
using nlohmann::json;

std::string name_of(DropReason r) {
  return std::string(core::wire::drop_reason_name(r));
}

json session_counters(const engine::SessionSnapshot& s) {
  const core::SessionCounters& c = s.counters;
  json drops = json::object();
  for (DropReason r : core::kSessionDropReasons)
    drops[name_of(r)] = c.drops[static_cast<std::size_t>(r)];
  json transitions = json::object();
  for (State from : core::kStates) {
    json to_map = json::object();
    for (State to : core::kStates) {
      if (to == from) continue;
      to_map[std::string(core::wire::state_name(to))] =
          c.transitions[static_cast<std::size_t>(from)][static_cast<std::size_t>(to)];
    }
    transitions[std::string(core::wire::state_name(from))] = std::move(to_map);
  }
  json flaps = json::object();
  for (std::size_t i = 0; i < core::kFlapCauseCount; ++i) {
    flaps[std::string(core::flap_cause_name(static_cast<core::FlapCause>(i)))] = c.flaps[i];
  }
  return json{{"peer", s.peer},
              {"local", s.local},
              {"interface", s.interface},
              {"group", s.group},
              {"multihop", s.multihop},
              {"state", core::wire::state_name(s.state)},
              {"packets", {{"rx", c.rx_packets}, {"tx", c.tx_packets}}},
              {"drops", std::move(drops)},
              {"transitions", std::move(transitions)},
              {"flaps", std::move(flaps)}};
}

bool peer_matches(const engine::SessionSnapshot& s, const std::string& peer) {
  if (s.peer == peer) return true;
  const auto pct = s.peer.find('%');
  return pct != std::string::npos && s.peer.compare(0, pct, peer) == 0 && peer.size() == pct;
}

std::string printable(const std::string& s) {
  std::string out;
  for (char c : s.substr(0, 64)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  return s.size() > 64 ? out + "..." : out;
}

}  // namespace

json counters_to_json(const std::vector<engine::SessionSnapshot>& sessions,
                      const engine::EngineStats& stats, const std::optional<std::string>& peer) {
  json list = json::array();
  for (const auto& s : sessions) {
    if (!peer || peer_matches(s, *peer)) list.push_back(session_counters(s));
  }
  if (peer && list.empty()) throw RequestError("unknown peer '" + printable(*peer) + "'");
  json drops = json::object();
  for (std::size_t i = 1; i < core::wire::kDropReasonCount; ++i) {  // 0 is DropReason::None
    drops[name_of(static_cast<DropReason>(i))] = stats.drops[i];
  }
  return json{{"sessions", std::move(list)}, {"engine", {{"drops", std::move(drops)}}}};
}

void register_counters_command(Dispatcher& d, Backend& backend) {
  d.add("counters", {[&backend](const json& req) {
                       std::optional<std::string> peer;
                       if (auto it = req.find("peer"); it != req.end()) {
                         if (!it->is_string()) throw RequestError("field 'peer' must be a string");
                         peer = it->get<std::string>();
                         if (peer->empty()) throw RequestError("field 'peer' must not be empty");
                       }
                       return counters_to_json(backend.sessions(), backend.stats(), peer);
                     },
                     {"peer"},
                     Access::Read});
}

}  // namespace beacon::ctl
