// `haproxy-process` check: the HAProxy (master) PID from a pidfile, watched
// with a pidfd so its exit is noticed the instant it happens.
//
//  * The first line of `pidfile` is the PID (HAProxy in master-worker mode
//    writes the master's PID first). pidfd_open(pid) (Linux >= 5.3), then the
//    pidfd becomes readable when the process exits -> Fail "haproxy pid N
//    exited" at once, with no polling latency.
//  * Liveness when (re)reading the pidfile: pidfd_open() succeeds AND
//    /proc/PID/stat's state is not Z (zombie) or X (dead). The pidfd is opened
//    first, so a process that dies after the check still wakes us up.
//  * The process name is deliberately NOT checked (no /proc/PID/comm match):
//    HAProxy may be started under another name (a wrapper, a renamed binary,
//    a container) and the tests use plain `sleep`. PID reuse is guarded only
//    by the pidfd itself: once we hold it, the PID cannot silently change
//    identity under us; a stale pidfile naming a reused PID would be reported
//    as running (documented limitation).
//  * Restart detection: inotify on the pidfile's directory (IN_CLOSE_WRITE,
//    IN_MOVED_TO, IN_CREATE, IN_DELETE, IN_MOVED_FROM for its name) plus a
//    500 ms fallback re-read of the pidfile. A new live PID -> Pass "haproxy
//    pid M running" at once.
//  * While a watched PID is alive the pidfd is the truth: a pidfile that
//    vanishes or is half-written (empty between create and write) does not
//    fail the check; a pidfile naming a different live PID switches to it.
//  * Missing / unparsable pidfile or dead PID while nothing live is watched:
//    Fail with the reason ("pidfile /run/haproxy.pid: No such file or
//    directory", "pidfile ...: no PID on first line", "pid 1234 in
//    /run/haproxy.pid is not running"). After an exit the reason stays
//    "haproxy pid N exited" while the pidfile still names that PID or is
//    missing/unparsable (e.g. truncated before being rewritten).
#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <charconv>
#include <chrono>
#include <fstream>
#include <memory>
#include <optional>

#include "event_probe_util.hpp"
#include "probes_impl.hpp"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

namespace beacon::health {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;

constexpr auto kRereadInterval = std::chrono::milliseconds(500);
constexpr std::uint32_t kDirMask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE |
                                   IN_MOVED_FROM | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR;

struct PidRead {
  pid_t pid = 0;      // > 0 when parsed
  std::string error;  // set when pid == 0
};

PidRead read_pidfile(const std::string& path) {
  PidRead out;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    out.error = "pidfile " + path + ": " + detail::errno_text(errno);
    return out;
  }
  char buf[128];
  ssize_t n;
  do {
    n = ::read(fd, buf, sizeof buf - 1);
  } while (n < 0 && errno == EINTR);
  const int err = errno;
  ::close(fd);
  if (n < 0) {
    out.error = "pidfile " + path + ": " + detail::errno_text(err);
    return out;
  }
  std::string_view text(buf, static_cast<std::size_t>(n));
  text = text.substr(0, text.find('\n'));
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r'))
    text.remove_suffix(1);
  long long v = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size() || v <= 0 ||
      v > 4194304) {
    out.error = "pidfile " + path + ": no PID on first line";
    return out;
  }
  out.pid = static_cast<pid_t>(v);
  return out;
}

// State letter from /proc/PID/stat ('R', 'S', 'Z', ...), 0 if unreadable.
char proc_state(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return 0;
  const auto rp = line.rfind(')');  // comm may contain spaces and ')'
  if (rp == std::string::npos || rp + 2 >= line.size()) return 0;
  return line[rp + 2];
}

class ProcessWatcher : public std::enable_shared_from_this<ProcessWatcher> {
 public:
  ProcessWatcher(const boost::asio::any_io_executor& io, std::string pidfile)
      : io_(io), pidfile_(std::move(pidfile)), pidfd_(io), inotify_(io), timer_(io) {
    std::tie(dir_, base_) = detail::split_path(pidfile_);
  }

  void watch(ResultFn on_change) {
    on_change_ = std::move(on_change);
    start();
    asio::post(io_, [self = shared_from_this()]() {
      if (self->stopped_) return;
      self->refresh();
      self->emit(true);
    });
  }

  void run(ResultFn done) {
    if (!started_) {  // one-shot: check without keeping descriptors open
      Result r = one_shot();
      asio::post(io_, [self = shared_from_this(), done = std::move(done), r = std::move(r)]() {
        if (!self->stopped_) done(r);
      });
      return;
    }
    asio::post(io_, [self = shared_from_this(), done = std::move(done)]() {
      if (self->stopped_) return;
      self->refresh();
      done(self->current());
    });
  }

  void cancel() {
    stopped_ = true;
    on_change_ = nullptr;
    timer_.cancel();
    error_code ec;
    pidfd_.close(ec);
    inotify_.close(ec);
    wd_ = -1;
  }

 private:
  Result current() const {
    Result r;
    r.status = status_;
    r.reason = reason_;
    return r;
  }

  Result one_shot() const {
    Result r;
    if (pidfile_.empty()) {
      r.reason = "haproxy-process check: no pidfile configured";
      return r;
    }
    const PidRead pr = read_pidfile(pidfile_);
    if (pr.pid == 0) {
      r.reason = pr.error;
      return r;
    }
    const char st = proc_state(pr.pid);
    if (st == 0 || st == 'Z' || st == 'X' || st == 'x') {
      r.reason = not_running(pr.pid);
      return r;
    }
    r.status = Status::Pass;
    r.reason = running(pr.pid);
    return r;
  }

  std::string running(pid_t pid) const { return "haproxy pid " + std::to_string(pid) + " running"; }
  std::string not_running(pid_t pid) const {
    return "pid " + std::to_string(pid) + " in " + pidfile_ + " is not running";
  }

  void start() {
    if (started_ || stopped_) return;
    started_ = true;
    const int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd >= 0) {
      inotify_.assign(fd);
      add_watch();
      arm_inotify();
    }
    arm_timer();
  }

  void add_watch() {
    if (!inotify_.is_open() || wd_ >= 0) return;
    wd_ = ::inotify_add_watch(inotify_.native_handle(), dir_.c_str(), kDirMask);
  }

  void arm_inotify() {
    inotify_.async_wait(asio::posix::stream_descriptor::wait_read,
                        [self = shared_from_this()](const error_code& ec) {
                          if (self->stopped_ || ec) return;
                          self->on_inotify();
                        });
  }

  void on_inotify() {
    bool relevant = false;
    detail::drain_inotify(inotify_.native_handle(),
                          [&](const inotify_event& ev, const std::string& name) {
                            if (ev.mask & IN_Q_OVERFLOW) relevant = true;
                            if (ev.wd != wd_) return;
                            if (ev.mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) {
                              ::inotify_rm_watch(inotify_.native_handle(), wd_);
                              wd_ = -1;  // the timer re-adds it
                              relevant = true;
                            } else if (name == base_) {
                              relevant = true;
                            }
                          });
    if (relevant) {
      refresh();
      emit(false);
    }
    arm_inotify();
  }

  void arm_timer() {
    timer_.expires_after(kRereadInterval);
    timer_.async_wait([self = shared_from_this()](const error_code& ec) {
      if (self->stopped_ || ec) return;
      self->add_watch();
      self->refresh();
      self->emit(false);
      self->arm_timer();
    });
  }

  void arm_pidfd() {
    pidfd_.async_wait(asio::posix::stream_descriptor::wait_read,
                      [self = shared_from_this(), pid = watched_pid_](const error_code& ec) {
                        if (self->stopped_ || ec) return;
                        if (pid != self->watched_pid_) return;  // superseded
                        self->on_exit();
                      });
  }

  void on_exit() {
    const pid_t pid = watched_pid_;
    error_code ec;
    pidfd_.close(ec);
    watched_pid_ = 0;
    dead_pid_ = pid;
    set(Status::Fail, "haproxy pid " + std::to_string(pid) + " exited");
    emit(false);
    // HAProxy may already have been restarted (new pidfile written before
    // the old master finished exiting): look now, not at the next timer.
    refresh();
    emit(false);
  }

  // Re-reads the pidfile and updates watched pid / verdict (no report).
  void refresh() {
    if (pidfile_.empty()) {
      set(Status::Fail, "haproxy-process check: no pidfile configured");
      return;
    }
    const PidRead pr = read_pidfile(pidfile_);
    if (pr.pid == 0) {
      // A live watched process stays the truth; after an exit the reason
      // stays "exited" while the pidfile is rewritten (truncate + write).
      if (watched_pid_ == 0 && dead_pid_ == 0) set(Status::Fail, pr.error);
      return;
    }
    if (pr.pid == watched_pid_) return;
    if (pr.pid == dead_pid_) return;  // keeps "haproxy pid N exited"
    const int fd = static_cast<int>(::syscall(SYS_pidfd_open, pr.pid, 0));
    if (fd < 0) {
      const int err = errno;
      if (watched_pid_ != 0) return;  // keep watching the live one
      if (err == ESRCH)
        set(Status::Fail, not_running(pr.pid));
      else
        set(Status::Fail, "pidfd_open(" + std::to_string(pr.pid) + "): " + detail::errno_text(err));
      return;
    }
    const char st = proc_state(pr.pid);
    if (st == 0 || st == 'Z' || st == 'X' || st == 'x') {
      ::close(fd);
      if (watched_pid_ != 0) return;
      set(Status::Fail, not_running(pr.pid));
      return;
    }
    error_code ec;
    pidfd_.close(ec);  // pending wait (old pid) completes aborted
    pidfd_.assign(fd, ec);
    if (ec) {
      ::close(fd);
      watched_pid_ = 0;
      set(Status::Fail, "pidfd: " + ec.message());
      return;
    }
    watched_pid_ = pr.pid;
    dead_pid_ = 0;
    set(Status::Pass, running(pr.pid));
    arm_pidfd();
  }

  void set(Status s, std::string reason) {
    status_ = s;
    reason_ = std::move(reason);
  }

  void emit(bool force) {
    if (stopped_) return;
    if (!filter_.update(status_, reason_) && !force) return;
    if (on_change_) on_change_(current());
  }

  asio::any_io_executor io_;
  std::string pidfile_, dir_, base_;
  asio::posix::stream_descriptor pidfd_;
  asio::posix::stream_descriptor inotify_;
  asio::steady_timer timer_;
  ResultFn on_change_;
  detail::ChangeFilter filter_;
  Status status_ = Status::Fail;
  std::string reason_ = "not checked yet";
  pid_t watched_pid_ = 0;
  pid_t dead_pid_ = 0;
  int wd_ = -1;
  bool started_ = false;
  bool stopped_ = false;
};

class HaproxyProcessProbe final : public Probe {
 public:
  HaproxyProcessProbe(const boost::asio::any_io_executor& io, const config::CheckSpec& spec)
      : w_(std::make_shared<ProcessWatcher>(io, spec.pidfile)) {}
  ~HaproxyProcessProbe() override { w_->cancel(); }
  void run(ResultFn done) override { w_->run(std::move(done)); }
  bool event_driven() const override { return true; }
  void watch(ResultFn on_change) override { w_->watch(std::move(on_change)); }
  void cancel() override { w_->cancel(); }

 private:
  std::shared_ptr<ProcessWatcher> w_;
};

}  // namespace

std::unique_ptr<Probe> make_haproxy_process_probe(const boost::asio::any_io_executor& io,
                                                  const config::CheckSpec& spec) {
  return std::make_unique<HaproxyProcessProbe>(io, spec);
}

}  // namespace beacon::health
