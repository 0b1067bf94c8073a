// Control socket access control. See access.hpp.
#include "beacon/ctl/access.hpp"

#include <grp.h>
#include <pwd.h>
#include <spdlog/logger.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <fstream>
#include <sstream>
#include <system_error>

namespace beacon::ctl {
namespace {

// Buffer for the *_r lookups: sysconf's hint, grown on ERANGE up to a bound
// (a group with thousands of members has a large entry).
constexpr std::size_t kMaxLookupBuffer = 1 << 20;

std::size_t initial_buffer(int name) {
  long n = ::sysconf(name);
  return n > 0 ? static_cast<std::size_t>(n) : 4096;
}

// The numbers after "Key:" on a /proc/PID/status line ("Groups:\t4 27 1001").
std::vector<unsigned long> numbers_after(std::string_view status, std::string_view key,
                                         bool& found) {
  std::vector<unsigned long> out;
  found = false;
  std::size_t pos = 0;
  while (pos < status.size()) {
    std::size_t end = status.find('\n', pos);
    if (end == std::string_view::npos) end = status.size();
    std::string_view line = status.substr(pos, end - pos);
    pos = end + 1;
    if (!line.starts_with(key)) continue;
    found = true;
    line.remove_prefix(key.size());
    const char* p = line.data();
    const char* last = line.data() + line.size();
    while (p < last) {
      while (p < last && (*p == ' ' || *p == '\t')) ++p;
      if (p == last) break;
      unsigned long v = 0;
      auto [next, ec] = std::from_chars(p, last, v);
      if (ec != std::errc() || next == p) {
        // Not a number list after all: trust nothing from this line.
        found = false;
        return {};
      }
      out.push_back(v);
      p = next;
    }
    return out;
  }
  return out;
}

// The effective id ("Uid:\treal effective saved fs") equals `id`: SO_PEERCRED
// reports the effective ids.
bool ids_match(std::string_view status, std::string_view key, unsigned long id) {
  bool found = false;
  std::vector<unsigned long> ids = numbers_after(status, key, found);
  return found && ids.size() >= 2 && ids[1] == id;
}

}  // namespace

std::string_view access_name(Access a) {
  return a == Access::Read ? "read-only" : "state-changing";
}

bool in_group(const PeerCredentials& who, const GroupRef& group) {
  if (!who.known || !group.gid) return false;
  const gid_t g = *group.gid;
  return who.gid == g || std::find(who.groups.begin(), who.groups.end(), g) != who.groups.end();
}

AccessDecision decide(const AccessPolicy& policy, const PeerCredentials& who, Access needed) {
  if (!who.known) {
    return {false, "permission denied: the caller's credentials could not be read"};
  }
  if (who.uid == 0) return {true, {}};
  if (in_group(who, policy.admin_group)) return {true, {}};
  if (needed == Access::Read && in_group(who, policy.read_group)) return {true, {}};

  const GroupRef& missing = needed == Access::Admin ? policy.admin_group : policy.read_group;
  std::string msg = "permission denied: uid " + std::to_string(who.uid) + " is not in " +
                    (needed == Access::Admin ? "admin" : "read") + " group " + missing.name;
  if (!missing.gid) {
    msg += needed == Access::Admin
               ? " (no such group on this host: only root may change state)"
               : " (no such group on this host: only root and the admin group may read)";
  }
  return {false, std::move(msg)};
}

std::optional<gid_t> lookup_group(const std::string& name, std::string& error) {
  error.clear();
  std::vector<char> buf(initial_buffer(_SC_GETGR_R_SIZE_MAX));
  for (;;) {
    group entry{};
    group* result = nullptr;
    int rc = ::getgrnam_r(name.c_str(), &entry, buf.data(), buf.size(), &result);
    if (rc == ERANGE && buf.size() < kMaxLookupBuffer) {
      buf.resize(buf.size() * 2);
      continue;
    }
    if (result != nullptr) return result->gr_gid;
    // Not found is rc 0 (or, with some NSS modules, ENOENT/ESRCH/EPERM...):
    // only a real failure is worth telling apart.
    if (rc != 0 && rc != ENOENT && rc != ESRCH && rc != EBADF && rc != EPERM) {
      error = std::error_code(rc, std::system_category()).message();
    }
    return std::nullopt;
  }
}

AccessPolicy resolve_access_policy(const std::string& read_group, const std::string& admin_group,
                                   spdlog::logger& log) {
  auto resolve = [&log](const std::string& name, const char* key, const char* grants) {
    GroupRef ref{name, std::nullopt};
    std::string error;
    ref.gid = lookup_group(name, error);
    if (ref.gid) {
      log.info("control socket: [daemon] {} = {} (gid {})", key, name, *ref.gid);
    } else if (!error.empty()) {
      log.warn(
          "control socket: [daemon] {} = {}: group lookup failed ({}); it matches nobody, "
          "so only root may {}",
          key, name, error, grants);
    } else {
      log.warn(
          "control socket: [daemon] {} = {}: no such group on this host; it matches "
          "nobody, so only root may {} (create the group, e.g. groupadd --system {})",
          key, name, grants, name);
    }
    return ref;
  };
  AccessPolicy p;
  p.read_group = resolve(read_group, "read_group", "run read-only commands (and admin_group)");
  p.admin_group = resolve(admin_group, "admin_group", "change state");
  return p;
}

std::vector<gid_t> parse_status_groups(std::string_view status, uid_t uid, gid_t gid) {
  if (!ids_match(status, "Uid:", uid) || !ids_match(status, "Gid:", gid)) return {};
  bool found = false;
  std::vector<unsigned long> raw = numbers_after(status, "Groups:", found);
  std::vector<gid_t> out;
  out.reserve(raw.size());
  for (unsigned long v : raw) {
    if (v <= static_cast<unsigned long>(static_cast<gid_t>(-1)))
      out.push_back(static_cast<gid_t>(v));
  }
  return out;
}

PeerCredentials read_peer_credentials(int fd) {
  PeerCredentials who;
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || len != sizeof cred) {
    return who;
  }
  who.known = true;
  who.uid = cred.uid;
  who.gid = cred.gid;
  who.pid = cred.pid;
  // Supplementary groups are not part of SO_PEERCRED; the peer's process
  // status has them. If the process is gone already, only the primary gid
  // counts (fewer rights, never more).
  if (cred.pid > 0) {
    std::ifstream in("/proc/" + std::to_string(cred.pid) + "/status");
    if (in) {
      std::ostringstream text;
      text << in.rdbuf();
      who.groups = parse_status_groups(text.str(), cred.uid, cred.gid);
    }
  }
  return who;
}

std::string user_name(uid_t uid) {
  std::vector<char> buf(initial_buffer(_SC_GETPW_R_SIZE_MAX));
  for (;;) {
    passwd entry{};
    passwd* result = nullptr;
    int rc = ::getpwuid_r(uid, &entry, buf.data(), buf.size(), &result);
    if (rc == ERANGE && buf.size() < kMaxLookupBuffer) {
      buf.resize(buf.size() * 2);
      continue;
    }
    if (result == nullptr || result->pw_name == nullptr) return "?";
    return result->pw_name;
  }
}

}  // namespace beacon::ctl
