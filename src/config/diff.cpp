// Configuration diff for reloads (see diff.hpp). Pure.
#include "beacon/config/diff.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <map>

#include "beacon/util/address_text.hpp"
#include "beacon/util/duration_text.hpp"

namespace beacon::config {
namespace {

template <class T>
T without_position(T x) {
  x.line = 0;
  x.column = 0;
  return x;
}

std::string quoted(const std::string& s) {
  return "\"" + s + "\"";
}

// Reload messages name durations in ms (or us when not whole).
std::string duration_text(core::Duration d) {
  return util::duration_ms_text(d);
}

std::string count_list(const std::vector<std::pair<std::size_t, std::string>>& parts,
                       std::size_t unchanged) {
  std::string out;
  for (const auto& [n, what] : parts) {
    if (n == 0) continue;
    if (!out.empty()) out += ", ";
    out += std::to_string(n) + " " + what;
  }
  if (!out.empty()) out += ", ";
  return out + std::to_string(unchanged) + " unchanged";
}

template <class Spec>
NamedDiff diff_named(const std::vector<Spec>& old, const std::vector<Spec>& next) {
  NamedDiff d;
  std::map<std::string, const Spec*> before;
  for (const auto& s : old) before.emplace(s.name, &s);
  for (const auto& s : next) {
    auto it = before.find(s.name);
    if (it == before.end()) {
      d.added.push_back(s.name);
    } else {
      (same_spec(*it->second, s) ? d.unchanged : d.changed).push_back(s.name);
      before.erase(it);
    }
  }
  for (const auto& s : old) {
    if (before.count(s.name) != 0) d.removed.push_back(s.name);
  }
  return d;
}

// ["a", "b"], or "all" for an empty list (every frontend).
std::string name_list(const std::vector<std::string>& names) {
  if (names.empty()) return "all";
  std::string out = "[";
  for (const auto& n : names) out += (out.size() > 1 ? ", " : "") + quoted(n);
  return out + "]";
}

// One setting the running daemon keeps until a restart.
struct RestartRow {
  const char* name;
  std::function<std::string(const Config&)> text;  // value as shown; compared as text
};

std::string opt_cpu(const std::optional<unsigned>& c) {
  return c ? std::to_string(*c) : std::string("none");
}

// Adding a setting that cannot change at run time is one row here.
const std::vector<RestartRow>& restart_rows() {
  static const std::vector<RestartRow> rows = {
      {"[daemon] control_socket", [](const Config& c) { return quoted(c.daemon.control_socket); }},
      {"[daemon] metrics_listen", [](const Config& c) { return quoted(c.daemon.metrics_listen); }},
      {"[daemon] state_dir", [](const Config& c) { return quoted(c.daemon.state_dir); }},
      {"[drain] haproxy_socket", [](const Config& c) { return quoted(c.drain.haproxy_socket); }},
      {"[drain] frontends", [](const Config& c) { return name_list(c.drain.frontends); }},
      {"[engine] cpu", [](const Config& c) { return opt_cpu(c.engine.cpu); }},
      {"[engine] realtime_priority",
       [](const Config& c) { return std::to_string(c.engine.realtime_priority); }},
      {"[engine] lock_memory",
       [](const Config& c) { return std::string(c.engine.lock_memory ? "true" : "false"); }},
      {"[engine] timer_slot", [](const Config& c) { return duration_text(c.engine.timer_slot); }},
      {"[engine] transmit", [](const Config& c) { return quoted(c.engine.transmit); }},
      {"[health] failsafe_timeout",
       [](const Config& c) { return duration_text(c.health.failsafe_timeout); }},
      {"[health] heartbeat_interval",
       [](const Config& c) { return duration_text(c.health.heartbeat_interval); }},
  };
  return rows;
}

}  // namespace

SessionKey session_key(const SessionSpec& s) {
  return SessionKey{s.peer, s.interface, s.local, s.multihop};
}

std::string session_key_text(const SessionKey& k) {
  std::string out = k.peer.to_string();
  if (!k.interface.empty() && out.find('%') == std::string::npos) {
    out += (util::is_link_local(k.peer) ? "%" : " dev ") + k.interface;
  }
  if (k.multihop) {
    out += " (multihop" + (k.local ? " from " + k.local->to_string() : std::string()) + ")";
  } else if (k.local) {
    out += " (from " + k.local->to_string() + ")";
  }
  return out;
}

bool same_params(const core::SessionParams& a, const core::SessionParams& b) {
  return a.desired_min_tx == b.desired_min_tx && a.required_min_rx == b.required_min_rx &&
         a.detect_mult == b.detect_mult && a.passive == b.passive;
}

bool same_spec(const SessionSpec& a, const SessionSpec& b) {
  return without_position(a) == without_position(b);
}
bool same_spec(const AcceptSpec& a, const AcceptSpec& b) {
  return without_position(a) == without_position(b);
}
bool same_spec(const CheckSpec& a, const CheckSpec& b) {
  return without_position(a) == without_position(b);
}
bool same_spec(const GroupSpec& a, const GroupSpec& b) {
  return without_position(a) == without_position(b);
}

SessionDiff diff_sessions(const std::vector<SessionSpec>& old,
                          const std::vector<SessionSpec>& next) {
  SessionDiff d;
  std::map<SessionKey, std::size_t> before;
  for (std::size_t i = 0; i < old.size(); ++i) before.emplace(session_key(old[i]), i);
  std::vector<bool> kept(old.size(), false);
  for (std::size_t j = 0; j < next.size(); ++j) {
    auto it = before.find(session_key(next[j]));
    if (it == before.end() || kept[it->second]) {
      d.added.push_back(j);
      continue;
    }
    const SessionSpec& a = old[it->second];
    const SessionSpec& b = next[j];
    kept[it->second] = true;
    SessionChange c{it->second, j};
    c.params = !same_params(a.params, b.params);
    c.timers = a.params.desired_min_tx != b.params.desired_min_tx ||
               a.params.required_min_rx != b.params.required_min_rx;
    c.group = a.group != b.group;
    c.min_ttl = a.min_ttl != b.min_ttl;
    c.auth = !(a.auth == b.auth);
    // Any field not named above that differs (a later per-session key) counts
    // as a change too, so it is never silently ignored.
    const bool other = !same_spec(a, b) && !c.params && !c.group && !c.min_ttl && !c.auth;
    (c.params || c.group || c.min_ttl || c.auth || other ? d.changed : d.unchanged).push_back(c);
  }
  for (std::size_t i = 0; i < old.size(); ++i) {
    if (!kept[i]) d.removed.push_back(i);
  }
  return d;
}

NamedDiff diff_checks(const std::vector<CheckSpec>& old, const std::vector<CheckSpec>& next) {
  return diff_named(old, next);
}

NamedDiff diff_groups(const std::vector<GroupSpec>& old, const std::vector<GroupSpec>& next) {
  return diff_named(old, next);
}

bool same_accepts(const std::vector<AcceptSpec>& old, const std::vector<AcceptSpec>& next) {
  return std::equal(old.begin(), old.end(), next.begin(), next.end(),
                    [](const AcceptSpec& a, const AcceptSpec& b) { return same_spec(a, b); });
}

std::vector<std::string> restart_settings(const Config& old, const Config& next) {
  std::vector<std::string> out;
  for (const auto& row : restart_rows()) {
    const std::string a = row.text(old), b = row.text(next);
    if (a != b) {
      out.push_back(fmt::format("needs a restart: {} changed ({} -> {}); running with {}", row.name,
                                a, b, a));
    }
  }
  return out;
}

ConfigDiff diff(const Config& old, const Config& next) {
  ConfigDiff d;
  d.sessions = diff_sessions(old.sessions, next.sessions);
  d.accepts_changed = !same_accepts(old.accepts, next.accepts);
  d.accepts_old = old.accepts.size();
  d.accepts_new = next.accepts.size();
  d.checks = diff_checks(old.checks, next.checks);
  d.groups = diff_groups(old.groups, next.groups);
  d.needs_restart = restart_settings(old, next);
  const auto& a = old.daemon;
  const auto& b = next.daemon;
  if (a.log_level != b.log_level) {
    d.applied.push_back("[daemon] log_level: " + a.log_level + " -> " + b.log_level);
  }
  if (a.shutdown_signal != b.shutdown_signal) {
    d.applied.push_back(fmt::format("[daemon] shutdown_signal: {} -> {}",
                                    core::hold_name(a.shutdown_signal),
                                    core::hold_name(b.shutdown_signal)));
  }
  if (a.read_group != b.read_group) {
    d.applied.push_back("[daemon] read_group: " + quoted(a.read_group) + " -> " +
                        quoted(b.read_group));
  }
  if (a.admin_group != b.admin_group) {
    d.applied.push_back("[daemon] admin_group: " + quoted(a.admin_group) + " -> " +
                        quoted(b.admin_group));
  }
  d.access_changed = a.read_group != b.read_group || a.admin_group != b.admin_group;
  if (old.bfd.multihop_min_ttl != next.bfd.multihop_min_ttl) {
    d.applied.push_back(fmt::format("[bfd] multihop_min_ttl: {} -> {}", old.bfd.multihop_min_ttl,
                                    next.bfd.multihop_min_ttl));
  }
  if (old.bfd.passive_create_per_second != next.bfd.passive_create_per_second) {
    d.applied.push_back(fmt::format("[bfd] passive_create_per_second: {} -> {}",
                                    old.bfd.passive_create_per_second,
                                    next.bfd.passive_create_per_second));
  }
  return d;
}

Config effective_after_reload(const Config& running, const Config& next) {
  Config c = next;
  c.daemon.control_socket = running.daemon.control_socket;
  c.engine = running.engine;
  c.health = running.health;
  c.drain = running.drain;  // the connection sampler is built once, at start
  return c;
}

std::string ConfigDiff::summary() const {
  std::size_t timers = 0, params = 0, moved = 0, auth = 0, other = 0;
  for (const auto& c : sessions.changed) {
    if (c.timers) {
      ++timers;
    } else if (c.params) {
      ++params;
    }
    if (c.group) ++moved;
    if (c.auth) ++auth;
    if (!c.params && !c.group && !c.auth) ++other;
  }
  std::string out = "sessions: " + count_list({{sessions.added.size(), "added"},
                                               {sessions.removed.size(), "removed"},
                                               {timers, "timers changed"},
                                               {params, "parameters changed"},
                                               {moved, "moved to another group"},
                                               {auth, "authentication changed"},
                                               {other, "changed"}},
                                              sessions.unchanged.size());
  out += "; accept rules: ";
  out += accepts_changed ? fmt::format("replaced ({} -> {})", accepts_old, accepts_new)
                         : std::string("unchanged");
  auto named = [](const NamedDiff& n) {
    return count_list(
        {{n.added.size(), "added"}, {n.removed.size(), "removed"}, {n.changed.size(), "changed"}},
        n.unchanged.size());
  };
  out += "; checks: " + named(checks) + "; groups: " + named(groups);
  return out;
}

bool ConfigDiff::empty() const {
  return sessions.added.empty() && sessions.removed.empty() && sessions.changed.empty() &&
         !accepts_changed && checks.added.empty() && checks.removed.empty() &&
         checks.changed.empty() && groups.added.empty() && groups.removed.empty() &&
         groups.changed.empty() && applied.empty() && needs_restart.empty();
}

}  // namespace beacon::config
