// Access control for the control socket: who may run which command.
//
// Rule: root (uid 0) may run every command. Read-only commands are also
// allowed to members of [daemon] read_group and of admin_group (whoever may
// change state may look); state-changing commands only to members of
// admin_group. A group named in the configuration that does not exist on the
// host matches nobody, so a fresh install without the groups is root-only:
// the safe side, because any state change can pull the box out of rotation.
//
// Membership counts the caller's primary gid (SO_PEERCRED) and its
// supplementary groups (/proc/PID/status "Groups:"), both read once when the
// connection is accepted. A caller whose credentials could not be read is
// refused everything.
//
// decide() is pure; the functions below it touch the system (NSS, /proc) and
// run on the ops loop at start-up or at accept time.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace spdlog {
class logger;
}

namespace beacon::ctl {

// Every registered command declares which one it is (Dispatcher::Command).
enum class Access {
  Read,   // changes nothing: sessions, stats, version, checks, groups
  Admin,  // changes state or behaviour: session-set-state, test hooks, ...
};

std::string_view access_name(Access a);  // "read-only" | "state-changing"

// One configured group: its name and, if it exists on this host, its gid.
struct GroupRef {
  std::string name;
  std::optional<gid_t> gid;  // nullopt: no such group here; matches nobody
};

struct AccessPolicy {
  GroupRef read_group;
  GroupRef admin_group;
};

// Who is on the other end of a control connection.
struct PeerCredentials {
  bool known = false;  // false: SO_PEERCRED failed; every command is refused
  uid_t uid = 0;
  gid_t gid = 0;
  pid_t pid = 0;
  std::vector<gid_t> groups;  // supplementary groups (may include gid)
};

struct AccessDecision {
  bool allowed = false;
  // On refusal, the text sent to the client, e.g. "permission denied: uid
  // 1001 is not in admin group bfd-beacon-admin". Empty when allowed.
  std::string message;
};

bool in_group(const PeerCredentials& who, const GroupRef& group);

// The decision itself: no system calls, no logging.
AccessDecision decide(const AccessPolicy& policy, const PeerCredentials& who, Access needed);

// ---- system side ----

// getgrnam_r; nullopt when the group does not exist. Sets `error` (and
// returns nullopt) when the lookup itself failed (NSS error), so the caller
// can tell "absent" from "could not ask".
std::optional<gid_t> lookup_group(const std::string& name, std::string& error);

// Resolves both names; logs a warning for each group that cannot be found
// (it then matches nobody, so only root may do what it grants).
AccessPolicy resolve_access_policy(const std::string& read_group, const std::string& admin_group,
                                   spdlog::logger& log);

// The supplementary gids of the "Groups:" line of a /proc/PID/status text.
// Also checks the effective ids of the "Uid:" and "Gid:" lines against `uid`
// and `gid` (what SO_PEERCRED reported): if they differ, the PID now belongs
// to another process (the caller exited and the number was reused) or the
// caller changed identity, and no groups are returned (fewer rights, never
// more).
std::vector<gid_t> parse_status_groups(std::string_view status, uid_t uid, gid_t gid);

// SO_PEERCRED on a connected UNIX socket, plus the supplementary groups of
// the peer's process. `known` is false if SO_PEERCRED failed.
PeerCredentials read_peer_credentials(int fd);

// getpwuid_r; "?" if the uid has no name.
std::string user_name(uid_t uid);

}  // namespace beacon::ctl
