// Daemon configuration: the TOML file model, parsed with toml++.
//
// Every error carries file:line:column (PKT-07/PKT-08 validation lives here:
// zero intervals and multiplier 0 are rejected). Runs on the ops side only
// (start-up, reload, --check-config); never on the engine loop.
#pragma once

#include <boost/asio/ip/address.hpp>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "beacon/core/auth.hpp"
#include "beacon/core/session.hpp"
#include "beacon/core/time.hpp"

namespace beacon::config {

struct ConfigError {
  std::string file;
  int line = 0;    // 1-based; 0 when unknown
  int column = 0;  // 1-based; 0 when unknown
  std::string message;
  // "file:line:column: message"
  std::string format() const;
};

struct DaemonConfig {
  std::string control_socket = "/run/bfd-beacon/control.sock";
  core::Hold shutdown_signal = core::Hold::Down;  // "down" | "admin-down"
  std::string log_level = "info";                 // spdlog level name
  // Control socket access (names resolved at start; a group missing on the
  // host matches nobody). Root may always do everything.
  std::string read_group = "bfd-beacon";         // read-only commands (and the socket's group)
  std::string admin_group = "bfd-beacon-admin";  // state-changing commands
  // Prometheus scrape endpoint "ADDR:PORT" or "[V6ADDR]:PORT" (an IP
  // literal: the exposer binds it as given); "" disables metrics.
  std::string metrics_listen = "127.0.0.1:9788";
  // Persistent state (maintenance.json: operator maintenance survives restarts).
  std::string state_dir = "/var/lib/bfd-beacon";
};

// [drain]: how `bfdctl drain --wait` counts HAProxy's current connections.
struct DrainConfig {
  // HAProxy runtime API socket; "" -> the first haproxy-socket [[check]]'s.
  std::string haproxy_socket;
  // The frontends (pxname of FRONTEND rows of "show stat") whose current
  // sessions are counted; empty -> every frontend, including one that only
  // serves monitor-uri or stats (HAProxy's "show stat" cannot tell those
  // apart), so name the traffic frontends when such a frontend exists.
  std::vector<std::string> frontends;
};

// [engine]: real-time placement of the engine thread (all off by default).
struct EngineConfig {
  std::optional<unsigned> cpu;  // pin the engine thread to this CPU
  // SCHED_FIFO priority 1..99 for the engine thread (needs CAP_SYS_NICE);
  // 0: the normal scheduler.
  int realtime_priority = 0;
  bool lock_memory = false;  // mlockall(MCL_CURRENT | MCL_FUTURE) at start (CAP_IPC_LOCK)
  // One wake-up of the engine serves every transmit deadline within this
  // slot (each timer programming costs a system call, on a VM an exit);
  // packets are never sent closer than 75 % of the interval all the same.
  core::Duration timer_slot{50};
  // How packets due together leave: "send" (one send(2) each, at once),
  // "io_uring" (batched; refuses to start without it), "auto" (io_uring
  // where the kernel allows it, else send).
  std::string transmit = "send";
};

// Authentication of a session (RFC 5880 §6.7): the keys auth_type and
// auth_keys of [[session]], [[accept]] and, as the default, [bfd]. Secrets
// live only in the key file (see load_key_file) and in `keys`; they never
// appear in errors, logs, bfdctl or metrics.
struct AuthSpec {
  core::wire::AuthType type = core::wire::AuthType::None;
  std::string keys_path;  // absolute path of the key file; "" with type None
  // Loaded from keys_path when the configuration was loaded; nullptr with
  // type None. Shared by every session configured with the same file.
  std::shared_ptr<const core::auth::KeyRing> keys;
  // Type, path and the keys' contents (a reload that rewrote the key file
  // with other keys is a change even if the path is the same).
  bool operator==(const AuthSpec& o) const;
};

// Reads a key file for sessions of `type` (not None): lines "KEY_ID SECRET"
// (blank lines and lines starting with '#' ignored), KEY_ID 0..255 and
// unique, SECRET one word of printable ASCII or "0x" followed by hex digits
// (two per byte), 1..16 bytes for simple and MD5, 1..20 for SHA1 (AUTH-02).
// The first key signs, all verify. Refused (nullptr, `error` says why,
// naming the file but never a secret) unless the file is a regular file
// owned by the daemon's effective user or root with no group or other
// permission bits (chmod 600).
std::shared_ptr<const core::auth::KeyRing> load_key_file(const std::string& path,
                                                         core::wire::AuthType type,
                                                         std::string& error);

struct BfdDefaults {
  core::SessionParams params{};         // desired_min_tx, required_min_rx, detect_multiplier
  std::uint8_t multihop_min_ttl = 254;  // RFC 5883 / MH-05 (GTSM style)
  std::uint32_t passive_create_per_second = 100;  // accept-rule creation rate limit
  AuthSpec auth;  // auth_type / auth_keys default of every session and accept rule
};

struct SessionSpec {
  boost::asio::ip::address peer;  // link-local: scope id resolved from interface
  std::optional<boost::asio::ip::address> local;
  std::string interface;  // empty: any
  bool multihop = false;
  bool passive = false;
  std::string group = "default";
  core::SessionParams params{};  // defaults from [bfd] already applied
  std::uint8_t min_ttl = 255;    // 255 for single hop; multihop default from [bfd]
  // Per-session override of the group's signals ("down" | "admin-down"), so
  // one group can face an RFC 5882-strict router and a BIRD router at once.
  std::optional<core::Hold> unhealthy_signal;
  std::optional<core::Hold> maintenance_signal;
  AuthSpec auth;             // [bfd]'s unless the table sets auth_type / auth_keys
  int line = 0, column = 0;  // where the [[session]] table starts
  // Every field, line/column included (config/diff.hpp compares without them).
  bool operator==(const SessionSpec&) const = default;
};

struct AcceptSpec {
  boost::asio::ip::address prefix;
  unsigned prefix_len = 0;
  std::string group = "default";
  std::uint32_t max_sessions = 64;
  bool multihop = false;
  std::string interface;         // empty: any
  core::SessionParams params{};  // passive = true
  std::uint8_t min_ttl = 255;
  AuthSpec auth;  // of the sessions it creates; [bfd]'s unless set here
  int line = 0, column = 0;
  // Every field, line/column included (config/diff.hpp compares without them).
  bool operator==(const AcceptSpec&) const = default;

  // True if `a` lies inside prefix/prefix_len (scope ids ignored; an
  // IPv4-mapped IPv6 address matches an IPv4 rule). Never throws.
  bool contains(const boost::asio::ip::address& a) const;
};

// ---- Health (issue 3) ----

// The type of a [[check]] (its `type = "..."` key). Everything that depends
// on the type (name, keys, polled or event-driven, defaults, the reader of its
// keys) is one row of the registry check_types(), so adding a type is adding
// an enumerator and a row.
enum class CheckType : std::uint8_t {
  HaproxyHttp,     // "haproxy-http"
  HaproxySocket,   // "haproxy-socket"
  HaproxyProcess,  // "haproxy-process"
  Interface,       // "interface"
  File,            // "file"
  Exec,            // "exec"
};
inline constexpr std::size_t kCheckTypeCount = 6;

struct CheckSpec;
namespace detail {
struct CheckKeyReader;  // the loader's view of one [[check]] table (src/config)
}

// One row of the check type registry.
struct CheckTypeInfo {
  CheckType type;
  std::string_view name;  // the config and JSON spelling
  // Polled on a schedule (interval, fast_interval, timeout apply); otherwise
  // event-driven: the probe acts on kernel events and has no poll schedule.
  bool polled;
  std::span<const std::string_view> keys;  // type-specific keys (besides name, type, rise, fall)
  // Defaults for a 0 in CheckSpec (see apply_check_defaults).
  std::uint32_t rise, fall;
  core::Duration interval;
  core::Duration timeout_max;  // default timeout: min(interval, timeout_max)
  // Reads and validates the type-specific keys into the spec.
  void (*read)(detail::CheckKeyReader&);
};

// The registry: one row per CheckType, in enumerator order.
std::span<const CheckTypeInfo> check_types();
const CheckTypeInfo& check_type_info(CheckType type);
// "haproxy-http", ...; "unknown" for a value that is no enumerator.
std::string_view type_name(CheckType type);
// The CheckType spelled `name` (exact, case-sensitive); nullopt if none is.
std::optional<CheckType> parse_check_type(std::string_view name);

// Resolves the 0 ("type default") fields of `spec` from its type's row:
// interval 0 -> the type's interval; fast_interval 0 -> interval; timeout 0 ->
// min(interval, timeout_max); rise/fall 0 -> the type's counts. Non-zero
// fields are kept as they are. The loader applies it to every check; code
// handed a hand-made CheckSpec (the health manager, the probes) applies it to
// a copy, so the defaults live in this one place.
void apply_check_defaults(CheckSpec& spec);

// One [[check]]. Only the keys of its type are meaningful; the loader rejects
// keys that do not belong to the type.
struct CheckSpec {
  std::string name;
  // Always set by the loader; a hand-made spec must set it too.
  CheckType type = CheckType::HaproxyHttp;
  // haproxy-http
  std::string url;
  int expect_status = 200;
  // haproxy-socket
  std::string socket;
  std::string backend;  // empty: no backend check
  std::uint32_t min_servers_up = 1;
  // haproxy-process
  std::string pidfile;
  // /proc/PID/comm or the base name of /proc/PID/exe must equal this for the
  // PID to count as HAProxy ("" accepts any process).
  std::string process_name = "haproxy";
  // How long an exited HAProxy's successor (a process handing over with
  // -sf/-st) may take to appear in the pidfile before the exit is a failure.
  core::Duration reload_grace{200'000};
  // interface
  std::string interface;
  // file
  std::string path;
  // exec
  std::vector<std::string> command;
  // polling (haproxy-http, haproxy-socket, exec); ignored by event-driven types.
  // apply_check_defaults resolves the 0 defaults below (the loader calls it), so
  // a loaded CheckSpec always has
  // 0 < timeout <= interval, 0 < fast_interval <= interval, rise/fall 1..1000.
  core::Duration interval{1'000'000};
  core::Duration fast_interval{0};  // 0: same as interval; used while rise/fall is in transition
  core::Duration timeout{0};        // 0: min(interval, 1s)
  // hysteresis: event-driven types default to 1/1, polled types to rise 2 / fall 2
  std::uint32_t rise = 0;  // 0: type default
  std::uint32_t fall = 0;  // 0: type default
  int line = 0, column = 0;
  // Every field, line/column included (config/diff.hpp compares without them).
  bool operator==(const CheckSpec&) const = default;

  // Not polled (see CheckTypeInfo::polled).
  bool event_driven() const { return !check_type_info(type).polled; }
};

// One [[group]]: which checks drive the sessions of a group, and the signal.
struct GroupSpec {
  std::string name;
  std::vector<std::string> checks;                   // names of [[check]] tables
  core::Hold unhealthy_signal = core::Hold::Down;    // "down" | "admin-down"
  core::Hold maintenance_signal = core::Hold::Down;  // "down" | "admin-down"
  std::uint8_t diag = 5;                             // diag used for "down" (0..31)
  int line = 0, column = 0;
  // Every field, line/column included (config/diff.hpp compares without them).
  bool operator==(const GroupSpec&) const = default;
};

// [health]: fail-safe of the engine against a stalled ops loop.
struct HealthConfig {
  core::Duration failsafe_timeout{1'000'000};  // no verdict heartbeat for this long -> Down
  core::Duration heartbeat_interval{100'000};  // how often the ops loop reports it is alive
};

struct Config {
  std::string source;  // file name used in errors
  DaemonConfig daemon;
  EngineConfig engine;
  BfdDefaults bfd;
  std::vector<SessionSpec> sessions;
  std::vector<AcceptSpec> accepts;
  std::vector<CheckSpec> checks;
  std::vector<GroupSpec> groups;
  HealthConfig health;
  DrainConfig drain;
};

struct LoadResult {
  std::optional<Config> config;  // set only when errors is empty
  std::vector<ConfigError> errors;
};

// Parses a duration with a mandatory unit: "50ms", "300us", "1s", "1.5s".
// Returns nullopt on a bad value.
std::optional<core::Duration> parse_duration(std::string_view text);

// "" when `text` is a valid listen address: "IPv4:PORT" or "[IPv6]:PORT",
// port 1..65535; otherwise what is wrong with it.
std::string listen_address_error(std::string_view text);

// Neither throws: syntax errors, bad values, unknown keys and I/O failures all
// come back in LoadResult::errors, sorted by position. A missing file gives
// "path: cannot open: <strerror>" (line and column 0). Ops loop only.
LoadResult load_file(const std::string& path);
// "" when only root or the daemon's user may change the file at `path`:
// owned by root or the effective uid, not group- or world-writable, in a
// directory that is not group- or world-writable (unless sticky). Otherwise
// what is wrong and how to fix it. The daemon refuses such a file at start,
// for --check-config and on reload (the configuration decides what the
// routers are told).
std::string file_safety_problem(const std::string& path);
// `source_name` is used as ConfigError::file and Config::source.
LoadResult load_string(std::string_view text, std::string_view source_name);

}  // namespace beacon::config
