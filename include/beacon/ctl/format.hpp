// Human-readable output of bfdctl, from the daemon's JSON responses. Pure;
// tolerant of missing fields (prints "-") so an older or newer daemon never
// crashes the client.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "beacon/ctl/style.hpp"

namespace beacon::ctl {

// "-" for 0, "300us", "50ms", "1s", "1.5s".
std::string format_interval_us(std::int64_t us);
// Time since an event: "850ms", "42s", "3m07s", "2h05m", "3d04h".
std::string format_age_ms(std::int64_t ms);

// Table with a header row: PEER LOCAL IFACE GROUP STATE REMOTE DIAG LDISC
// RDISC TX RX/DETECT HOLD SIGNAL(U/M) SINCE REASON. `sessions` is the
// daemon's array. SIGNAL(U/M) is what the session sends when unhealthy / in
// maintenance ("down/admin-down"), with "*" when the [[session]] overrides
// its group's; "-" when not health-managed.
std::string format_sessions_table(const nlohmann::json& sessions, const Style& style = {});
// "key: value" lines; drop reasons listed only when nonzero.
std::string format_stats(const nlohmann::json& stats);
// "N sessions set to down (diag 5)" / "N sessions set to up".
std::string format_set_state(const nlohmann::json& response, const Style& style = {});
// Health: the "checks" / "groups" arrays of the daemon's answers.
std::string format_checks_table(const nlohmann::json& checks, const Style& style = {});
std::string format_groups_table(const nlohmann::json& groups, const Style& style = {});

// The same tables as rows, for views that show only part of them (watch).
// `compact` drops the columns a live view can do without (LOCAL, LDISC,
// RDISC, RX/DETECT).
Table sessions_table(const nlohmann::json& sessions, const Style& style, bool compact = false);
Table checks_table(const nlohmann::json& checks, const Style& style);
Table groups_table(const nlohmann::json& groups, const Style& style);

}  // namespace beacon::ctl
