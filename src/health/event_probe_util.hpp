// Helpers shared by the event-driven probes (haproxy_process.cpp,
// file_probe.cpp, interface_probe.cpp). Private to src/health.
//
// Threading contract of all event-driven probes: watch(), run() and cancel()
// are called on the ops loop thread (the thread running the io_context), or
// before that io_context runs. Under that contract "no callback after
// cancel()" holds because every handler checks the stopped flag first.
#pragma once

#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <string>
#include <utility>

#include "beacon/health/probe.hpp"
#include "beacon/util/errno_text.hpp"

namespace beacon::health::detail {

using util::errno_text;

// "/a/b/c" -> {"/a/b", "c"}; "c" -> {".", "c"}; "/c" -> {"/", "c"}.
// Trailing slashes are stripped first.
inline std::pair<std::string, std::string> split_path(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  const auto slash = path.rfind('/');
  if (slash == std::string::npos) return {".", path};
  if (slash == 0) return {"/", path.substr(1)};
  return {path.substr(0, slash), path.substr(slash + 1)};
}

// Remembers the last reported verdict so that a watcher only hears changes.
class ChangeFilter {
 public:
  // True if (status, reason) differs from the last call (or this is the first).
  bool update(Status s, const std::string& reason) {
    if (valid_ && s == status_ && reason == reason_) return false;
    valid_ = true;
    status_ = s;
    reason_ = reason;
    return true;
  }
  void reset() { valid_ = false; }
  bool valid() const { return valid_; }
  Result current() const {
    Result r;
    r.status = status_;
    r.reason = reason_;
    return r;
  }

 private:
  bool valid_ = false;
  Status status_ = Status::Fail;
  std::string reason_;
};

// Drains a non-blocking inotify fd, calling fn for every event (name may be
// empty). Returns false on a read error other than EAGAIN.
template <typename Fn>
bool drain_inotify(int fd, Fn&& fn) {
  alignas(inotify_event) char buf[8192];
  for (int guard = 0; guard < 64; ++guard) {  // bounded: 64 * 8 KiB per wake-up
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno == EAGAIN || errno == EWOULDBLOCK;
    }
    if (n == 0) return true;
    for (ssize_t off = 0; off + static_cast<ssize_t>(sizeof(inotify_event)) <= n;) {
      const auto* ev = reinterpret_cast<const inotify_event*>(buf + off);
      fn(*ev, ev->len > 0 ? std::string(ev->name) : std::string());
      off += static_cast<ssize_t>(sizeof(inotify_event) + ev->len);
    }
  }
  return true;
}

}  // namespace beacon::health::detail
