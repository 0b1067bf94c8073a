// Private: one loader per top-level section of the config file. Each appends
// what it reads to `config` and every problem to `diag`; none throws.
#pragma once

#include "config_impl.hpp"

namespace beacon::config::detail {

void load_daemon(const toml::table& table, Config& config, Diagnostics& diag);
// [engine]: real-time options of the engine thread.
void load_engine(const toml::table& table, Config& config, Diagnostics& diag);
// [bfd]: defaults for every session and accept rule.
void load_bfd(const toml::table& table, Config& config, Diagnostics& diag);
// [[session]]: needs config.bfd loaded first.
void load_sessions(const toml::array& sessions, Config& config, Diagnostics& diag);
// [[accept]]: needs config.bfd loaded first.
void load_accepts(const toml::array& accepts, Config& config, Diagnostics& diag);

// [[check]]: health checks (issue 3). Defaults (timeout, fast_interval,
// rise, fall) are resolved here, so every CheckSpec holds real values.
void load_checks(const toml::array& checks, Config& config, Diagnostics& diag);
// [[group]]: needs config.checks loaded first (names are resolved).
void load_groups(const toml::array& groups, Config& config, Diagnostics& diag);
// [health]: engine fail-safe against a stalled ops loop.
void load_health(const toml::table& table, Config& config, Diagnostics& diag);

// [drain]: the HAProxy socket drain counts connections on.
void load_drain(const toml::table& table, Config& config, Diagnostics& diag);

// desired_min_tx / required_min_rx / detect_multiplier, shared by [bfd],
// [[session]] and [[accept]]; present keys override `params`.
void read_timers(TableReader& reader, core::SessionParams& params);

// auth_type / auth_keys, shared by [bfd], [[session]] and [[accept]]: present
// keys override `auth` (which holds the [bfd] default), and the key file is
// loaded when the result uses authentication. `defaults`: this is [bfd],
// which may give auth_keys without a type (sessions then choose it).
void read_auth(TableReader& reader, AuthSpec& auth, bool defaults = false);

}  // namespace beacon::config::detail
