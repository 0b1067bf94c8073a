// Who may change what this daemon announces: its configuration file.
//
// The configuration decides which routers keep this box in their routes, so
// a file (or a directory holding it) that someone other than its owner may
// write is a way to take the box out of, or put it into, rotation. The
// daemon refuses such a file at start and on reload, the way sshd refuses a
// writable authorized_keys.
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <string>

#include "beacon/config/config.hpp"
#include "beacon/util/errno_text.hpp"

namespace beacon::config {
namespace {

std::string mode_text(mode_t m) {
  std::array<char, 8> out{};
  std::snprintf(out.data(), out.size(), "%04o", static_cast<unsigned>(m & 07777));
  return out.data();
}

std::string directory_of(const std::string& path) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

std::string file_safety_problem(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "cannot stat: " + util::errno_text(errno);
  const uid_t euid = ::geteuid();
  if (st.st_uid != 0 && st.st_uid != euid) {
    return "is owned by uid " + std::to_string(st.st_uid) +
           ", neither root nor the daemon's user (uid " + std::to_string(euid) + "); chown root " +
           path;
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    return "is group- or world-writable (mode " + mode_text(st.st_mode) +
           "): whoever may write it decides what the routers are told; chmod go-w " + path;
  }
  const std::string dir = directory_of(path);
  struct stat ds {};
  if (::stat(dir.c_str(), &ds) != 0)
    return "cannot stat its directory " + dir + ": " + util::errno_text(errno);
  // A sticky directory (/tmp) lets nobody replace another user's file.
  if ((ds.st_mode & (S_IWGRP | S_IWOTH)) != 0 && (ds.st_mode & S_ISVTX) == 0) {
    return "is in directory " + dir + ", which is group- or world-writable (mode " +
           mode_text(ds.st_mode) +
           ") without the sticky bit: anyone who may write it can replace the file; chmod go-w " +
           dir;
  }
  return {};
}

}  // namespace beacon::config
