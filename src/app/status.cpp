// The "status" answer: is this box in rotation, and why not. Pure.
//
// A group is in rotation when at least one of its sessions is Up (a router
// keeps that next hop). The box is in rotation when any group is. Every
// reason a group is (partly) out is listed: maintenance (who, when, why,
// from where), a health verdict that is not healthy, operator or fail-safe
// holds, sessions that are simply not Up (peer silent).
#include <algorithm>
#include <map>

#include "beacon/app/maintenance_wiring.hpp"

namespace beacon::app {
namespace {

using nlohmann::json;

std::string signal_of(const engine::SessionSnapshot& s) {
  // What the session sends now.
  switch (s.state) {
    case core::wire::State::Up:
      return "up";
    case core::wire::State::Init:
      return "init";
    case core::wire::State::AdminDown:
      return "admin-down";
    case core::wire::State::Down:
      break;
  }
  return "down";
}

json maintenance_json(const MaintenanceEntry& e) {
  return json{
      {"scope", e.scope},   {"uid", e.uid ? json(*e.uid) : json(nullptr)},
      {"user", e.user},     {"since", e.since},
      {"reason", e.reason}, {"origin", origin_name(e.origin)},
      {"drain", e.drain},   {"drain_started", e.drain ? json(e.drain_started) : json(nullptr)}};
}

const MaintenanceEntry* covering(const std::vector<MaintenanceEntry>& m, const std::string& g) {
  const MaintenanceEntry* all = nullptr;
  for (const auto& e : m) {
    if (e.scope == g) return &e;
    if (e.scope == "all") all = &e;
  }
  return all;
}

json check_json(const health::CheckStatus& c) {
  json j{{"name", c.name},
         {"type", c.type},
         {"state", c.known ? std::string(health::status_name(c.state)) : "unknown"},
         {"reason", c.reason},
         {"last_status", c.known ? json(health::status_name(c.last_status)) : json(nullptr)},
         {"last_reason", c.last_reason},
         {"latency_ms", std::chrono::duration<double, std::milli>(c.last_latency).count()},
         {"since", c.since ? json(rfc3339_utc(*c.since)) : json(nullptr)}};
  return j;
}

std::string describe(const MaintenanceEntry& e) {
  std::string t = (e.drain ? "drain" : "maintenance") + std::string(" (") +
                  (e.scope == "all" ? "all" : "group " + e.scope) + ") by " + e.user + " since " +
                  e.since;
  if (!e.reason.empty()) t += ": " + e.reason;
  if (e.origin == MaintenanceOrigin::StateFile) t += " [from the state file]";
  return t;
}

}  // namespace

json build_status(const StatusInput& in) {
  // Groups in a stable order: [[group]] tables first (config order), then
  // groups that only sessions name, sorted.
  std::vector<std::string> names = in.declared_groups;
  std::vector<std::string> extra;
  for (const auto& s : in.sessions) {
    if (std::find(names.begin(), names.end(), s.group) == names.end() &&
        std::find(extra.begin(), extra.end(), s.group) == extra.end()) {
      extra.push_back(s.group);
    }
  }
  std::sort(extra.begin(), extra.end());
  names.insert(names.end(), extra.begin(), extra.end());

  std::size_t up_total = 0;
  bool any_in = false;
  json reasons = json::array();
  json groups = json::array();
  for (const auto& name : names) {
    json g{{"name", name}};
    std::map<std::string, std::size_t> sending{
        {"up", 0}, {"init", 0}, {"down", 0}, {"admin-down", 0}};
    std::size_t total = 0, up = 0;
    std::map<std::string, std::size_t> holds;
    for (const auto& s : in.sessions) {
      if (s.group != name) continue;
      ++total;
      ++sending[signal_of(s)];
      if (s.state == core::wire::State::Up) ++up;
      if (s.hold != core::Hold::None) {
        std::string h = std::string(engine::hold_source_name(s.hold_source)) + ": " +
                        std::string(core::hold_name(s.hold));
        if (!s.hold_reason.empty()) h += " (" + s.hold_reason + ")";
        ++holds[h];
      }
    }
    up_total += up;
    g["sessions"] = json{{"up", up}, {"total", total}};
    g["sending"] = sending;
    // The signal: what every session sends, or "mixed".
    std::string signal = "none";
    for (const auto& [k, n] : sending) {
      if (n == 0) continue;
      signal = signal == "none" ? k : "mixed";
    }
    g["signal"] = signal;
    g["in_rotation"] = up > 0;
    any_in = any_in || up > 0;
    json hold_list = json::array();
    for (const auto& [h, n] : holds) hold_list.push_back(json{{"hold", h}, {"sessions", n}});
    g["holds"] = std::move(hold_list);

    const health::GroupStatus* hg = nullptr;
    for (const auto& x : in.groups) {
      if (x.name == name) hg = &x;
    }
    if (hg != nullptr) {
      g["verdict"] = health::verdict_name(hg->decision.verdict);
      g["verdict_reason"] = hg->decision.reason;
      json checks = json::array();
      for (const auto& cn : hg->checks) {
        for (const auto& c : in.checks) {
          if (c.name == cn) checks.push_back(check_json(c));
        }
      }
      g["checks"] = std::move(checks);
    } else {
      g["verdict"] = nullptr;  // not health-managed
      g["verdict_reason"] = "no health checks";
      g["checks"] = json::array();
    }
    const MaintenanceEntry* m = covering(in.maintenance, name);
    g["maintenance"] = m != nullptr ? maintenance_json(*m) : json(nullptr);

    // Why (part of) this group is out of rotation.
    json why = json::array();
    if (m != nullptr) why.push_back(describe(*m));
    if (hg != nullptr && hg->decision.verdict != health::Verdict::Healthy) {
      why.push_back(std::string("health ") +
                    std::string(health::verdict_name(hg->decision.verdict)) + ": " +
                    hg->decision.reason);
    }
    for (const auto& [h, n] : holds) {
      if (h.rfind("maintenance:", 0) == 0 || h.rfind("health:", 0) == 0) continue;
      why.push_back(h + " on " + std::to_string(n) + " session(s)");
    }
    if (total > up && why.empty()) {
      why.push_back(std::to_string(total - up) + " of " + std::to_string(total) +
                    " session(s) not Up (peer not answering or not configured for us)");
    }
    if (total == 0) why.push_back("no sessions");
    for (const auto& w : why) reasons.push_back(name + ": " + w.get<std::string>());
    g["why_not"] = std::move(why);
    groups.push_back(std::move(g));
  }

  json out;
  out["in_rotation"] = any_in;
  out["sessions"] = json{{"up", up_total}, {"total", in.sessions.size()}};
  json maint = json::array();
  for (const auto& e : in.maintenance) maint.push_back(maintenance_json(e));
  out["maintenance"] = std::move(maint);
  out["state_file"] = json{{"path", in.state_file}, {"damaged", in.state_file_damaged}};
  out["drain"] = in.drain;
  out["groups"] = std::move(groups);
  out["why_not"] = std::move(reasons);
  out["now"] = rfc3339_utc(in.now);
  std::string summary;
  if (!in.maintenance.empty()) {
    summary = "in maintenance: " + describe(in.maintenance.front());
    if (in.maintenance.size() > 1) {
      summary += " (+" + std::to_string(in.maintenance.size() - 1) + " more)";
    }
  } else if (any_in) {
    summary = "in rotation";
  } else {
    summary = "out of rotation";
  }
  out["summary"] = summary;
  return out;
}

}  // namespace beacon::app
