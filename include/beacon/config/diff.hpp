// What a configuration reload changes: a pure comparison of the running
// Config with a newly loaded one. No I/O; the engine, the health manager and
// the daemon each apply their share of the result.
//
// Identity of a [[session]] (SessionKey): the peer address (with its IPv6
// scope id), the interface it is bound to, the configured local address and
// single hop vs multihop. Two specs with the same key are the same session:
// it keeps its discriminator, its source port and its state across the
// reload. A change of any part of the key is a different session: the old
// one is removed (it signals [daemon] shutdown_signal first) and the new one
// added. Everything else of a spec is mutable in place:
//  - timers and role (desired_min_tx, required_min_rx, detect_multiplier,
//    passive): Session::set_params, i.e. a Poll sequence while Up (RFC 5880
//    §6.8.3); a Detect Mult change alone needs no Poll;
//  - group: the session moves to the other group and takes up that group's
//    holds at once (an unhealthy group signals Down on the next packet);
//  - min_ttl (multihop): the receive rule changes, nothing on the wire;
//  - authentication (auth_type, auth_keys, or the key file's contents, read
//    again on every reload): swapped in place without a restart, so a key
//    rotation (add the new key on both sides, then make it the first line)
//    never takes the session down; the sequence numbers carry on while the
//    type stays the same (Session::set_auth).
//
// [[accept]] rules are compared as one ordered list (order decides which
// rule matches); [[check]] and [[group]] tables by name. Every field counts
// except line/column. Settings the running daemon cannot change (the
// control socket, [engine], [health] timing) are reported as "needs a
// restart: ..." and keep their running value; see restart_settings().
#pragma once

#include <boost/asio/ip/address.hpp>
#include <cstddef>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "beacon/config/config.hpp"

namespace beacon::config {

struct SessionKey {
  boost::asio::ip::address peer;  // with scope id
  std::string interface;
  std::optional<boost::asio::ip::address> local;
  bool multihop = false;

  friend bool operator==(const SessionKey&, const SessionKey&) = default;
  friend bool operator<(const SessionKey& a, const SessionKey& b) {
    auto peer_scope = [](const boost::asio::ip::address& x) {
      return x.is_v6() ? x.to_v6().scope_id() : 0UL;
    };
    return std::tuple(a.multihop, a.peer, peer_scope(a.peer), a.interface, a.local) <
           std::tuple(b.multihop, b.peer, peer_scope(b.peer), b.interface, b.local);
  }
};

SessionKey session_key(const SessionSpec& s);
// "198.18.0.1", "fe80::1%eth0", "198.18.0.1 (multihop from 198.18.0.2)".
std::string session_key_text(const SessionKey& k);

// Field-by-field equality, line/column excluded.
bool same_spec(const SessionSpec& a, const SessionSpec& b);
bool same_spec(const AcceptSpec& a, const AcceptSpec& b);
bool same_spec(const CheckSpec& a, const CheckSpec& b);
bool same_spec(const GroupSpec& a, const GroupSpec& b);
// The timer and role part of SessionParams (desired_min_tx, required_min_rx,
// detect_mult, passive); the engine's own tx_slack/tx_delay are ignored.
bool same_params(const core::SessionParams& a, const core::SessionParams& b);

struct SessionChange {
  std::size_t old_index = 0;  // into old.sessions
  std::size_t new_index = 0;  // into next.sessions
  bool params = false;        // desired_min_tx, required_min_rx, detect_mult or passive
  bool timers = false;        // desired_min_tx or required_min_rx (a Poll while Up)
  bool group = false;
  bool min_ttl = false;
  bool auth = false;  // auth_type, auth_keys or the key file's contents
};

struct SessionDiff {
  std::vector<std::size_t> added;    // into next.sessions
  std::vector<std::size_t> removed;  // into old.sessions
  std::vector<SessionChange> changed;
  std::vector<SessionChange> unchanged;  // identical specs (indices may differ)
};

// Tables identified by name ([[check]], [[group]]).
struct NamedDiff {
  std::vector<std::string> added, removed, changed, unchanged;
};

struct ConfigDiff {
  SessionDiff sessions;
  bool accepts_changed = false;
  std::size_t accepts_old = 0, accepts_new = 0;
  NamedDiff checks;
  NamedDiff groups;
  // Applied at once: "[daemon] log_level: info -> debug".
  std::vector<std::string> applied;
  // Kept at their running value until a restart: "needs a restart:
  // [daemon] control_socket changed (\"/run/a.sock\" -> \"/run/b.sock\")".
  std::vector<std::string> needs_restart;

  bool access_changed = false;  // read_group or admin_group: re-resolve

  // "sessions: 1 added, 1 removed, 2 timers changed, 5 unchanged; accept
  // rules: unchanged; checks: 1 changed, 2 unchanged; groups: 2 unchanged"
  std::string summary() const;
  bool empty() const;  // nothing at all differs
};

SessionDiff diff_sessions(const std::vector<SessionSpec>& old,
                          const std::vector<SessionSpec>& next);
NamedDiff diff_checks(const std::vector<CheckSpec>& old, const std::vector<CheckSpec>& next);
NamedDiff diff_groups(const std::vector<GroupSpec>& old, const std::vector<GroupSpec>& next);
bool same_accepts(const std::vector<AcceptSpec>& old, const std::vector<AcceptSpec>& next);
// The "needs a restart: ..." lines for `old` -> `next`.
std::vector<std::string> restart_settings(const Config& old, const Config& next);

ConfigDiff diff(const Config& old, const Config& next);

// `next` with every setting that needs a restart put back to `running`'s
// value: the configuration actually in force after a reload.
Config effective_after_reload(const Config& running, const Config& next);

}  // namespace beacon::config
