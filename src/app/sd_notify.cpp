// See sd_notify.hpp.
#include "beacon/app/sd_notify.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace beacon::app::sd {
namespace {

template <class T>
std::optional<T> parse_unsigned(const char* s) noexcept {
  if (s == nullptr || *s == '\0') return std::nullopt;
  const char* end = s + std::strlen(s);
  T v{};
  auto [p, ec] = std::from_chars(s, end, v);
  if (ec != std::errc() || p != end) return std::nullopt;
  return v;
}

}  // namespace

std::optional<std::chrono::microseconds> parse_watchdog(const char* usec, const char* pid,
                                                        pid_t self) noexcept {
  const auto us = parse_unsigned<std::uint64_t>(usec);
  // 0 means "no watchdog"; anything that does not fit a signed microsecond
  // count is as good as infinite, i.e. no watchdog either.
  if (!us || *us == 0 || *us > static_cast<std::uint64_t>(INT64_MAX)) return std::nullopt;
  if (pid != nullptr) {
    // systemd sets WATCHDOG_PID for the main process only; a value that is
    // not ours means the variables were inherited and are not for us.
    const auto p = parse_unsigned<std::uint64_t>(pid);
    if (!p || *p != static_cast<std::uint64_t>(self)) return std::nullopt;
  }
  return std::chrono::microseconds(static_cast<std::int64_t>(*us));
}

Environment read_environment(bool unset, pid_t self) noexcept {
  Environment env;
  try {
    if (const char* s = std::getenv("NOTIFY_SOCKET"); s != nullptr) env.notify_socket = s;
  } catch (...) {
    env.notify_socket.clear();  // out of memory for a path: behave as unsupervised
  }
  env.watchdog = parse_watchdog(std::getenv("WATCHDOG_USEC"), std::getenv("WATCHDOG_PID"), self);
  if (unset) {
    ::unsetenv("NOTIFY_SOCKET");
    ::unsetenv("WATCHDOG_USEC");
    ::unsetenv("WATCHDOG_PID");
  }
  return env;
}

std::string monotonic_usec_field() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  const auto us = static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000u +
                  static_cast<std::uint64_t>(ts.tv_nsec) / 1'000u;
  char buf[48] = "MONOTONIC_USEC=";
  const std::size_t prefix = std::strlen(buf);
  auto [p, ec] = std::to_chars(buf + prefix, buf + sizeof buf - 1, us);
  (void)ec;  // 20 digits always fit
  try {
    return std::string(buf, p);
  } catch (...) {
    return {};
  }
}

std::string status_field(std::string_view line) {
  std::string out = "STATUS=";
  out.reserve(out.size() + line.size());
  for (char c : line) {
    const auto u = static_cast<unsigned char>(c);
    out.push_back(u < 0x20 || u == 0x7f ? ' ' : c);
  }
  return out;
}

Notifier::Notifier(std::string_view address) noexcept {
  if (address.empty()) return;
  try {
    // "@name" is Linux's abstract namespace: sun_path starts with a NUL and
    // the name is not NUL-terminated (its length comes from the address size).
    std::string path(address);
    if (path.front() == '@') path.front() = '\0';
    if (path.front() != '/' && path.front() != '\0') {
      error_ = "NOTIFY_SOCKET=" + std::string(address) +
               ": not an absolute path or '@' abstract name (ignored)";
      return;
    }
    if (path.size() > sizeof(sockaddr_un::sun_path) ||
        (path.front() == '/' && path.size() == sizeof(sockaddr_un::sun_path))) {
      error_ = "NOTIFY_SOCKET=" + std::string(address) + ": name too long (ignored)";
      return;
    }
    const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
      error_ = std::string("NOTIFY_SOCKET: socket: ") + std::strerror(errno);
      return;
    }
    address_ = std::move(path);
    fd_ = fd;
  } catch (...) {
    error_.clear();  // out of memory: stay disabled
  }
}

Notifier::~Notifier() {
  if (fd_ >= 0) ::close(fd_);
}

Notifier::Notifier(Notifier&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      address_(std::move(other.address_)),
      error_(std::move(other.error_)),
      last_errno_(other.last_errno_.load()) {}

Notifier& Notifier::operator=(Notifier&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    address_ = std::move(other.address_);
    error_ = std::move(other.error_);
    last_errno_.store(other.last_errno_.load());
  }
  return *this;
}

bool Notifier::send(std::string_view message) noexcept {
  if (fd_ < 0) return false;
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::memcpy(sa.sun_path, address_.data(), address_.size());
  // A path is NUL-terminated inside sun_path (zeroed above); an abstract
  // name's length is exactly its bytes.
  const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address_.size() +
                                          (address_.front() == '/' ? 1 : 0));
  const ssize_t n = ::sendto(fd_, message.data(), message.size(), MSG_DONTWAIT | MSG_NOSIGNAL,
                             reinterpret_cast<const sockaddr*>(&sa), len);
  if (n < 0) {
    last_errno_.store(errno, std::memory_order_relaxed);
    return false;
  }
  return static_cast<std::size_t>(n) == message.size();
}

bool Notifier::notify_ready() noexcept {
  return send("READY=1");
}

bool Notifier::notify_ready(std::string_view status) noexcept {
  if (fd_ < 0) return false;
  try {
    return send("READY=1\n" + status_field(status));
  } catch (...) {
    return notify_ready();  // no memory for the status: readiness matters more
  }
}

bool Notifier::notify_reloading() noexcept {
  if (fd_ < 0) return false;
  const std::string mono = monotonic_usec_field();
  if (mono.empty()) return send("RELOADING=1");
  try {
    return send("RELOADING=1\n" + mono);
  } catch (...) {
    return send("RELOADING=1");
  }
}

bool Notifier::notify_stopping() noexcept {
  return send("STOPPING=1");
}

bool Notifier::notify_watchdog() noexcept {
  return send("WATCHDOG=1");
}

bool Notifier::notify_status(std::string_view line) noexcept {
  if (fd_ < 0) return false;
  try {
    return send(status_field(line));
  } catch (...) {
    return false;
  }
}

}  // namespace beacon::app::sd
