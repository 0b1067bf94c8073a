// bfdctl's human output. Every field is read defensively: a missing or
// mistyped field prints "-" rather than throwing.
#include "beacon/ctl/format.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "beacon/util/duration_text.hpp"

namespace beacon::ctl {
namespace {

using nlohmann::json;

std::string text(const json& obj, const char* key) {
  if (!obj.is_object()) return "-";
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return "-";
  if (it->is_string()) {
    const auto& s = it->get_ref<const std::string&>();
    return s.empty() ? "-" : s;
  }
  if (it->is_boolean()) return it->get<bool>() ? "yes" : "no";
  return it->dump(-1, ' ', false, json::error_handler_t::replace);
}

std::optional<std::int64_t> number(const json& obj, const char* key) {
  if (!obj.is_object()) return std::nullopt;
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_number_integer()) return std::nullopt;
  return it->get<std::int64_t>();
}

std::string interval(const json& obj, const char* key) {
  auto v = number(obj, key);
  return v ? format_interval_us(*v) : "-";
}

std::string fixed(double v, int decimals) {
  std::array<char, 32> buf{};
  std::snprintf(buf.data(), buf.size(), "%.*f", decimals, v);
  std::string s(buf.data());
  // "1.50" -> "1.5", "2.0" -> "2"
  if (s.find('.') != std::string::npos) {
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
  }
  return s;
}

std::string pad_table(const std::vector<std::vector<std::string>>& rows) {
  Table t;
  for (const auto& r : rows) t.add(r);
  return t.render();
}

std::vector<std::string> bold_header(std::vector<std::string> header, const Style& style) {
  if (style.colour) {
    for (auto& h : header) h = style.paint(h, Colour::Bold);
  }
  return header;
}

// "down/admin-down" (unhealthy/maintenance), "*" when the session overrides
// its group's signals; "-" when the session is not health-managed.
std::string signals_cell(const json& s) {
  std::string u = text(s, "unhealthy_signal"), m = text(s, "maintenance_signal");
  if (u == "-" && m == "-") return "-";
  std::string cell = u + "/" + m;
  if (s.is_object() && s.value("signal_override", false)) cell += "*";
  return cell;
}

// "keyed-sha1:3" (the type and the signing Key ID), "-" without
// authentication or from a daemon that does not report it.
std::string auth_cell(const json& s) {
  const std::string type = text(s, "auth_type");
  if (type == "-" || type == "none") return "-";
  return type + ":" + text(s, "auth_key_id");
}

}  // namespace

std::string format_interval_us(std::int64_t us) {
  return util::interval_text(us);
}

std::string format_age_ms(std::int64_t ms) {
  if (ms < 0) return "-";
  if (ms < 1000) return std::to_string(ms) + "ms";
  std::int64_t s = ms / 1000;
  std::array<char, 32> buf{};
  if (s < 60) {
    std::snprintf(buf.data(), buf.size(), "%llds", static_cast<long long>(s));
  } else if (s < 3600) {
    std::snprintf(buf.data(), buf.size(), "%lldm%02llds", static_cast<long long>(s / 60),
                  static_cast<long long>(s % 60));
  } else if (s < 86400) {
    std::snprintf(buf.data(), buf.size(), "%lldh%02lldm", static_cast<long long>(s / 3600),
                  static_cast<long long>(s % 3600 / 60));
  } else {
    std::snprintf(buf.data(), buf.size(), "%lldd%02lldh", static_cast<long long>(s / 86400),
                  static_cast<long long>(s % 86400 / 3600));
  }
  return buf.data();
}

Table sessions_table(const json& sessions, const Style& style, bool compact) {
  std::vector<std::string> header =
      compact
          ? std::vector<std::string>{"PEER", "IFACE", "GROUP",       "STATE", "REMOTE", "DIAG(L/R)",
                                     "TX",   "HOLD",  "SIGNAL(U/M)", "SINCE", "REASON"}
          : std::vector<std::string>{"PEER",        "LOCAL",  "IFACE",     "GROUP",
                                     "STATE",       "REMOTE", "DIAG(L/R)", "LDISC",
                                     "RDISC",       "TX",     "RX/DETECT", "HOLD",
                                     "SIGNAL(U/M)", "SINCE",  "AUTH",      "REASON"};
  Table t(bold_header(std::move(header), style));
  if (!sessions.is_array()) return t;
  for (const auto& s : sessions) {
    std::string peer = text(s, "peer");
    if (s.is_object() && s.value("multihop", false)) peer += " (mh)";
    // Removed by a reload, still signalling until the peer acknowledges or a
    // detection time passes: listed, and marked so it is not taken for a
    // configured session (a replacement on the same path may sit beside it).
    if (s.is_object() && s.value("removing", false)) peer += " (removing)";
    std::string hold = text(s, "hold");
    if (hold == "none") hold = "-";
    const Colour hold_c = hold_colour(hold);
    if (hold != "-" && s.is_object() && s.contains("hold_source") && s["hold_source"].is_string()) {
      hold += "(" + s["hold_source"].get<std::string>() + ")";
    }
    auto since = number(s, "since_change_ms");
    // Why the session is held (health check, fail-safe, start-up); last so it may be long.
    std::string reason = hold == "-" ? "-" : text(s, "hold_reason");
    const std::string state = text(s, "state"), remote = text(s, "remote_state");
    std::vector<std::string> row{peer};
    if (!compact) row.push_back(text(s, "local"));
    row.insert(row.end(),
               {text(s, "interface"), text(s, "group"), style.paint(state, state_colour(state)),
                style.paint(remote, state_colour(remote)),
                text(s, "local_diag") + "/" + text(s, "remote_diag")});
    if (!compact) row.insert(row.end(), {text(s, "local_discr"), text(s, "remote_discr")});
    row.push_back(interval(s, "tx_interval_us"));
    if (!compact) {
      row.push_back(interval(s, "required_min_rx_us") + "/" + interval(s, "detection_time_us"));
    }
    row.insert(row.end(),
               {style.paint(hold, hold_c), signals_cell(s), since ? format_age_ms(*since) : "-"});
    if (!compact) row.push_back(auth_cell(s));
    row.push_back(reason);
    t.add(std::move(row));
  }
  return t;
}

std::string format_sessions_table(const json& sessions, const Style& style) {
  return sessions_table(sessions, style).render();
}

std::string format_stats(const json& stats) {
  std::vector<std::vector<std::string>> rows;
  for (const char* key :
       {"sessions", "rx_datagrams", "tx_packets", "tx_errors", "tx_syscalls", "rx_errors",
        "rx_kernel_drops", "rx_buffer_bytes", "passive_created", "passive_removed",
        "failsafe_trips", "timer_fires", "timer_wakeups", "timer_arms"}) {
    rows.push_back({std::string(key) + ":", text(stats, key)});
  }
  rows.push_back({"timer_lateness_max:", interval(stats, "timer_lateness_max_us")});
  rows.push_back({"timer_lateness_mean:", interval(stats, "timer_lateness_mean_us")});
  rows.push_back({"call_max:", interval(stats, "call_max_us")});
  std::string out = pad_table(rows);
  std::vector<std::vector<std::string>> drops;
  if (stats.is_object() && stats.contains("drops") && stats["drops"].is_object()) {
    for (const auto& [name, count] : stats["drops"].items()) {
      if (count.is_number_integer() && count.get<std::int64_t>() != 0) {
        drops.push_back({"  " + name + ":", count.dump()});
      }
    }
  }
  out += drops.empty() ? "drops: none\n" : "drops:\n" + pad_table(drops);
  return out;
}

std::string format_set_state(const json& response, const Style& style) {
  const std::string state = text(response, "state");
  std::string out = text(response, "matched") + " sessions set to " +
                    style.paint(state, state == "up" ? Colour::Green : hold_colour(state));
  if (auto diag = number(response, "diag")) out += " (diag " + std::to_string(*diag) + ")";
  return out;
}

// ---- health ----

Table checks_table(const json& checks, const Style& style) {
  Table t(bold_header({"CHECK", "TYPE", "STATE", "LATENCY", "REASON"}, style));
  if (!checks.is_array()) return t;
  for (const auto& c : checks) {
    if (!c.is_object()) continue;
    const std::string base = text(c, "state");
    std::string state = style.paint(base, verdict_colour(base));
    if (c.value("in_transition", false)) state += " (->" + text(c, "last_status") + ")";
    std::string latency = "-";
    if (auto it = c.find("last_latency_ms"); it != c.end() && it->is_number()) {
      latency = fixed(it->get<double>(), 1) + "ms";
    }
    t.add({text(c, "name"), text(c, "type"), state, latency, text(c, "reason")});
  }
  return t;
}

std::string format_checks_table(const json& checks, const Style& style) {
  return checks_table(checks, style).render();
}

Table groups_table(const json& groups, const Style& style) {
  Table t(bold_header({"GROUP", "VERDICT", "SIGNAL", "REASON"}, style));
  if (!groups.is_array()) return t;
  for (const auto& g : groups) {
    if (!g.is_object()) continue;
    // What the sessions send ("signal", over every hold source) where the
    // daemon gives it, else the health decision's own hold (older daemons).
    const json* src = &g;
    std::string reason = text(g, "reason");
    std::string origin;
    if (auto it = g.find("signal"); it != g.end() && it->is_object()) {
      src = &*it;
      const std::string from = text(*it, "source");
      if (from != "-" && from != "health") {
        origin = " (" + from + ")";
        const std::string why = text(*it, "reason");
        // SIGNAL names the source already; the reason is that hold's own.
        if (why != "-" && !why.empty()) reason = why;
      }
    }
    const std::string hold = text(*src, "hold");
    std::string signal = hold;
    if (signal != "none" && signal != "-" && signal != "mixed") {
      signal += " diag " + text(*src, "diag");
    }
    signal += origin;
    const std::string verdict = text(g, "verdict");
    t.add({text(g, "name"), style.paint(verdict, verdict_colour(verdict)),
           style.paint(signal, hold_colour(hold)), reason});
  }
  return t;
}

std::string format_groups_table(const json& groups, const Style& style) {
  return groups_table(groups, style).render();
}

}  // namespace beacon::ctl
