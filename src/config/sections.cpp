// [daemon] and [bfd], plus the timer keys every section shares.
#include <array>

#include "config_sections.hpp"

namespace beacon::config::detail {

void read_timers(TableReader& reader, core::SessionParams& params) {
  // PKT-07: bfd.DesiredMinTxInterval is never 0 (RFC 5880 §6.8.1).
  if (auto v = reader.get_interval("desired_min_tx",
                                   "RFC 5880 forbids a zero Desired Min TX interval")) {
    params.desired_min_tx = *v;
  }
  // Required Min RX 0 would tell the peer to send nothing at all, so the
  // session could never detect a failure: reject it rather than warn.
  if (auto v = reader.get_interval(
          "required_min_rx", "0 asks the peer to stop sending, which disables failure detection")) {
    params.required_min_rx = *v;
  }
  // PKT-08: bfd.DetectMult is never 0.
  if (auto v = reader.get_int("detect_multiplier", 1, 255)) {
    params.detect_mult = static_cast<std::uint8_t>(*v);
  }
}

namespace {

// A group name as groupadd accepts it: 1..32 of [A-Za-z0-9_.-], not starting
// with '-' (it would read as an option) and not all digits (a number would be
// taken for a gid by some tools and for a name by getgrnam: say which).
void read_group_name(TableReader& r, Diagnostics& diag, std::string_view key, std::string& out) {
  auto name = r.get_string(key);
  if (!name) return;
  auto fail = [&](const std::string& why) {
    diag.error(position_of(*r.find(key)), "daemon." + std::string(key) + ": " + why);
  };
  if (name->empty() || name->size() > 32) {
    fail("must be a group name of 1 to 32 characters");
    return;
  }
  for (char c : *name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == '-';
    if (!ok) {
      fail("not a valid group name (letters, digits, '_', '.', '-')");
      return;
    }
  }
  if (name->front() == '-') {
    fail("not a valid group name (must not start with '-')");
    return;
  }
  if (name->find_first_not_of("0123456789") == std::string::npos) {
    fail("give the group's name, not its gid");
    return;
  }
  out = *name;
}

}  // namespace

void load_daemon(const toml::table& table, Config& config, Diagnostics& diag) {
  TableReader r(table, "daemon", diag);
  DaemonConfig& d = config.daemon;
  if (auto path = r.get_string("control_socket")) {
    // sun_path holds 108 bytes including the terminating NUL.
    if (path->empty() || path->size() > 107 || path->find('\0') != std::string::npos) {
      diag.error(position_of(*r.find("control_socket")),
                 "daemon.control_socket: must be a non-empty path of at most 107 bytes "
                 "(the limit of a UNIX socket address)");
    } else {
      d.control_socket = *path;
    }
  }
  static constexpr std::array<std::string_view, 2> kSignals = {"down", "admin-down"};
  if (auto s = r.get_enum("shutdown_signal", kSignals)) {
    d.shutdown_signal = *s == "down" ? core::Hold::Down : core::Hold::AdminDown;
  }
  static constexpr std::array<std::string_view, 5> kLevels = {"trace", "debug", "info", "warn",
                                                              "error"};
  if (auto level = r.get_enum("log_level", kLevels)) d.log_level = *level;
  read_group_name(r, diag, "read_group", d.read_group);
  read_group_name(r, diag, "admin_group", d.admin_group);
  if (auto listen = r.get_string("metrics_listen")) {
    if (std::string why = listen_address_error(*listen); !listen->empty() && !why.empty()) {
      diag.error(position_of(*r.find("metrics_listen")), "daemon.metrics_listen: " + why);
    } else {
      d.metrics_listen = *listen;
    }
  }
  if (auto dir = r.get_string("state_dir")) {
    // Absolute: the daemon's working directory is no place for state that
    // must survive a restart.
    if (dir->empty() || dir->front() != '/' || dir->find('\0') != std::string::npos ||
        dir->size() > 4000) {
      diag.error(position_of(*r.find("state_dir")),
                 "daemon.state_dir: must be an absolute directory path");
    } else {
      d.state_dir = *dir;
    }
  }
  r.report_unknown();
}

namespace {

// frontends = ["fe_http", "fe_tls"]: a non-empty array of distinct HAProxy
// proxy names (a name that is not one could never match a row).
void load_drain_frontends(TableReader& r, DrainConfig& drain) {
  const toml::node* n = r.find("frontends");
  if (n == nullptr) return;
  const auto* arr = n->as_array();
  if (arr == nullptr) {
    r.diag().error(position_of(*n),
                   "drain.frontends: expected an array of HAProxy frontend names, e.g. "
                   "[\"fe_http\"], got " +
                       std::string(type_name(n->type())));
    return;
  }
  if (arr->empty()) {
    r.diag().error(position_of(*n),
                   "drain.frontends: must name at least one frontend (leave the key out to "
                   "count every frontend)");
    return;
  }
  std::vector<std::string> names;
  bool ok = true;
  for (std::size_t i = 0; i < arr->size(); ++i) {
    const toml::node& e = *arr->get(i);
    const std::string where = "drain.frontends[" + std::to_string(i) + "]: ";
    const auto* s = e.as_string();
    if (s == nullptr) {
      r.diag().error(position_of(e), where + "expected a frontend name (a string), got " +
                                         std::string(type_name(e.type())));
      ok = false;
    } else if (s->get().empty()) {
      r.diag().error(position_of(e), where + "must not be empty");
      ok = false;
    } else if (!valid_proxy_name(s->get())) {
      r.diag().error(position_of(e), where + "\"" + s->get() +
                                         "\" is not a valid HAProxy frontend name (1-255 of "
                                         "A-Z a-z 0-9 - _ . :)");
      ok = false;
    } else if (std::find(names.begin(), names.end(), s->get()) != names.end()) {
      r.diag().error(position_of(e), where + "frontend \"" + s->get() + "\" is listed twice");
      ok = false;
    } else {
      names.push_back(s->get());
    }
  }
  if (ok) drain.frontends = std::move(names);
}

}  // namespace

void load_drain(const toml::table& table, Config& config, Diagnostics& diag) {
  TableReader r(table, "drain", diag);
  if (auto path = r.get_string("haproxy_socket")) {
    if (path->empty() || path->size() > 107 || path->find('\0') != std::string::npos) {
      diag.error(position_of(*r.find("haproxy_socket")),
                 "drain.haproxy_socket: must be a non-empty path of at most 107 bytes "
                 "(the limit of a UNIX socket address)");
    } else {
      config.drain.haproxy_socket = *path;
    }
  }
  load_drain_frontends(r, config.drain);
  r.report_unknown();
}

void load_engine(const toml::table& table, Config& config, Diagnostics& diag) {
  TableReader r(table, "engine", diag);
  EngineConfig& e = config.engine;
  // Whether the CPU exists is checked at start (the file may be validated on
  // another machine); the bound only keeps the value sane.
  if (auto cpu = r.get_int("cpu", 0, 4095)) e.cpu = static_cast<unsigned>(*cpu);
  if (auto prio = r.get_int("realtime_priority", 0, 99))
    e.realtime_priority = static_cast<int>(*prio);
  if (auto lock = r.get_bool("lock_memory")) e.lock_memory = *lock;
  if (auto slot = r.get_duration("timer_slot", core::Duration{1}, core::Duration{1'000},
                                 "use \"1us\" to serve every deadline on its own")) {
    e.timer_slot = *slot;
  }
  static constexpr std::array<std::string_view, 3> kTransmit = {"auto", "io_uring", "send"};
  if (auto t = r.get_enum("transmit", kTransmit)) e.transmit = *t;
  r.report_unknown();
}

void load_bfd(const toml::table& table, Config& config, Diagnostics& diag) {
  TableReader r(table, "bfd", diag);
  BfdDefaults& b = config.bfd;
  read_timers(r, b.params);
  // MH-05: minimum received TTL on multihop sessions (GTSM style, RFC 5082).
  if (auto ttl = r.get_int("multihop_min_ttl", 1, 255)) {
    b.multihop_min_ttl = static_cast<std::uint8_t>(*ttl);
  }
  // Zero would make every [[accept]] rule dead; omit [[accept]] instead.
  if (auto rate = r.get_int("passive_create_per_second", 1, 1'000'000)) {
    b.passive_create_per_second = static_cast<std::uint32_t>(*rate);
  }
  read_auth(r, b.auth, true);
  r.report_unknown();
}

}  // namespace beacon::config::detail
