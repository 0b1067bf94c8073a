// The systemd notification protocol (sd_notify(3)) without libsystemd: one
// datagram of "KEY=VALUE" lines to the AF_UNIX socket named by $NOTIFY_SOCKET
// (a path, or an abstract name written with a leading '@').
//
// Rules, and why:
//  - Never blocks: the socket is non-blocking and every send uses
//    MSG_DONTWAIT, so a service manager that stops reading can never stall
//    the thread that reports (the watchdog thread, the ops loop).
//  - Never throws, never fails the daemon: a notification is advice to the
//    supervisor; a lost one costs at most a late READY or a watchdog restart,
//    both of which systemd already handles. Failures are only reported back
//    (send() returns false, error() says why).
//  - No-op without $NOTIFY_SOCKET (started by hand, by a test, or by a
//    supervisor that is not systemd).
//  - Thread-safe: the socket is created once by the constructor and only
//    sendto() is called afterwards; concurrent datagrams never interleave.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace beacon::app::sd {

// What the service manager put in the environment for this process.
struct Environment {
  std::string notify_socket;  // "" = not supervised by a notify-aware manager
  // Half of it is the keep-alive period. Unset when $WATCHDOG_USEC is missing,
  // 0 or malformed, or when $WATCHDOG_PID names another process (the variable
  // was inherited from a parent that is the supervised one).
  std::optional<std::chrono::microseconds> watchdog;
};

// Reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID (compared with `self`).
// With `unset`, removes the three variables so that processes the daemon
// starts (exec checks) neither inherit nor act on them. unsetenv() is not
// thread-safe: call it before any other thread exists.
Environment read_environment(bool unset, pid_t self) noexcept;

// Parses a WATCHDOG_USEC / WATCHDOG_PID pair as systemd does; null pointers
// are unset variables. Exposed for tests.
std::optional<std::chrono::microseconds> parse_watchdog(const char* usec, const char* pid,
                                                        pid_t self) noexcept;

// "MONOTONIC_USEC=<CLOCK_MONOTONIC in microseconds>": the field systemd
// requires beside RELOADING=1 (Type=notify-reload) to tell this reload from
// an earlier one.
std::string monotonic_usec_field() noexcept;

class Notifier {
 public:
  // Disabled (every send a no-op that returns false).
  Notifier() noexcept = default;
  // `address`: a path, or '@' + abstract name; "" disables. A malformed
  // address or a failed socket() leaves it disabled with error() set.
  explicit Notifier(std::string_view address) noexcept;
  ~Notifier();
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;
  Notifier(Notifier&& other) noexcept;
  Notifier& operator=(Notifier&& other) noexcept;

  bool enabled() const noexcept { return fd_ >= 0; }
  // Why the notifier is disabled although an address was given ("" if not).
  const std::string& error() const noexcept { return error_; }
  // errno of the last failed send (0: none yet). Any thread.
  int last_errno() const noexcept { return last_errno_.load(std::memory_order_relaxed); }

  // Sends `message` ("KEY=VALUE" lines separated by '\n') as one datagram.
  // Returns true when the kernel accepted it.
  bool send(std::string_view message) noexcept;

  // The messages the daemon sends. Each returns what send() returned.
  bool notify_ready() noexcept;  // READY=1 (also after a reload)
  // RELOADING=1 + MONOTONIC_USEC=...; follow it with notify_ready() once the
  // new configuration is in force (or the old one is kept).
  bool notify_reloading() noexcept;
  bool notify_stopping() noexcept;  // STOPPING=1
  bool notify_watchdog() noexcept;  // WATCHDOG=1
  // STATUS=<line>; control characters in `line` become spaces so that the
  // status can never inject another assignment.
  bool notify_status(std::string_view line) noexcept;
  // READY=1 and STATUS=<line> in one datagram (the first status a manager
  // shows is then already the ready one).
  bool notify_ready(std::string_view status) noexcept;

 private:
  int fd_ = -1;
  std::string address_;  // sockaddr_un::sun_path bytes (abstract: leading NUL)
  std::string error_;
  std::atomic<int> last_errno_{0};
};

// STATUS=... payload for `line` (exposed for tests).
std::string status_field(std::string_view line);

}  // namespace beacon::app::sd
