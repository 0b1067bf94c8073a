// `haproxy-process` check: the HAProxy (master) PID from a pidfile, watched
// with a pidfd so its exit is noticed the instant it happens.
//
//  * The first line of `pidfile` is the PID (HAProxy in master-worker mode
//    writes the master's PID first). pidfd_open(pid) (Linux >= 5.3), then the
//    pidfd becomes readable when the process exits.
//  * Liveness when (re)reading the pidfile: pidfd_open() succeeds, AND
//    /proc/PID/stat's state is not Z (zombie) or X (dead), AND the process is
//    HAProxy: its /proc/PID/comm or the base name of /proc/PID/exe equals
//    `process_name` ("haproxy" by default; empty disables the test). A stale
//    pidfile naming a PID the kernel has since given to another program fails
//    ("pid N in FILE is not haproxy (comm "sleep", exe /usr/bin/sleep)"). The
//    pidfd is opened first, so a process that dies after the check still
//    wakes us up, and once we hold it the PID cannot change identity.
//  * Reload or death: when the watched process exits, the verdict waits for
//    nothing if the answer is already known: the pidfile is re-read at once
//    and a live HAProxy it names takes over without a failure (the new
//    process of `haproxy -D -p FILE -sf OLD` may write the file before or
//    after the old one exits). If the file still names the dead PID, /proc is
//    searched for a live HAProxy whose command line hands over from it
//    (`-sf`/`-st` followed by that PID): that is a seamless reload in flight,
//    so the check stays Pass ("... reload in progress") for up to
//    `reload_grace` while it waits for the pidfile to name the successor
//    (inotify, plus a 5 ms re-read while waiting). No successor, or none that
//    the pidfile names within the grace: Fail "haproxy pid N exited". A death
//    with no successor process is therefore reported as fast as the pidfd
//    wakes us, whatever the grace. Master-worker reloads (SIGUSR2) keep the
//    master PID and never get here.
//  * Pidfile changes: inotify on the pidfile's directory (IN_CLOSE_WRITE,
//    IN_MODIFY, IN_MOVED_TO, IN_CREATE, IN_DELETE, IN_MOVED_FROM for its name)
//    plus a 500 ms fallback re-read. IN_MODIFY matters: a daemon that writes
//    its PID and keeps the file open until later must be adopted on the write,
//    or a process killed right after starting goes unnoticed until the
//    fallback re-read.
//  * While a watched PID is alive the pidfd is the truth: a pidfile that
//    vanishes or is half-written (empty between create and write), or names a
//    process that is not HAProxy, does not fail the check; a pidfile naming a
//    different live HAProxy switches to it.
//  * Missing / unparsable pidfile or dead PID while nothing live is watched:
//    Fail with the reason ("pidfile /run/haproxy.pid: No such file or
//    directory", "pidfile ...: no PID on first line", "pid 1234 in
//    /run/haproxy.pid is not running"). After an exit the reason stays
//    "haproxy pid N exited" while the pidfile still names that PID or is
//    missing/unparsable (e.g. truncated before being rewritten).
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <charconv>
#include <chrono>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "event_probe_util.hpp"
#include "polled_probe_impl.hpp"
#include "probes_impl.hpp"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

namespace beacon::health {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;

constexpr auto kRereadInterval = std::chrono::milliseconds(500);
// Re-read of the pidfile while a reload is in flight (bounded by reload_grace).
constexpr auto kReloadPoll = std::chrono::milliseconds(5);
constexpr std::uint32_t kDirMask = IN_CLOSE_WRITE | IN_MODIFY | IN_MOVED_TO | IN_CREATE |
                                   IN_DELETE | IN_MOVED_FROM | IN_DELETE_SELF | IN_MOVE_SELF |
                                   IN_ONLYDIR;

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

// Whole small /proc file (stat, comm, cmdline), "" if unreadable.
std::string read_proc(pid_t pid, const char* what, std::size_t max) {
  const std::string path = "/proc/" + std::to_string(pid) + "/" + what;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  std::string out;
  char buf[4096];
  while (out.size() < max) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}

// State letter from /proc/PID/stat ('R', 'S', 'Z', ...), 0 if unreadable.
char proc_state(pid_t pid) {
  const std::string stat = read_proc(pid, "stat", 4096);
  const auto rp = stat.rfind(')');  // comm may contain spaces and ')'
  if (rp == std::string::npos || rp + 2 >= stat.size()) return 0;
  return stat[rp + 2];
}

bool dead_state(char st) {
  return st == 0 || st == 'Z' || st == 'X' || st == 'x';
}

struct ProcName {
  std::string comm;  // /proc/PID/comm without the newline (at most 15 bytes)
  std::string exe;   // /proc/PID/exe target, " (deleted)" stripped; "" if unreadable
};

ProcName proc_name(pid_t pid) {
  ProcName n;
  n.comm = read_proc(pid, "comm", 64);
  while (!n.comm.empty() && (n.comm.back() == '\n' || n.comm.back() == '\0')) n.comm.pop_back();
  char buf[4096];
  const std::string link = "/proc/" + std::to_string(pid) + "/exe";
  const ssize_t len = ::readlink(link.c_str(), buf, sizeof buf - 1);
  if (len > 0) {
    n.exe.assign(buf, static_cast<std::size_t>(len));
    // After a package upgrade the running binary's file is replaced.
    constexpr std::string_view kDeleted = " (deleted)";
    if (n.exe.size() > kDeleted.size() && n.exe.ends_with(kDeleted)) {
      n.exe.resize(n.exe.size() - kDeleted.size());
    }
  }
  return n;
}

// comm is the first 15 bytes of the executable's name (TASK_COMM_LEN - 1).
bool name_matches(const ProcName& n, const std::string& want) {
  if (want.empty()) return true;
  if (!n.comm.empty() && n.comm == std::string_view(want).substr(0, 15)) return true;
  const auto slash = n.exe.rfind('/');
  return !n.exe.empty() && n.exe.substr(slash == std::string::npos ? 0 : slash + 1) == want;
}

std::string describe(const ProcName& n) {
  std::string out = "comm \"" + n.comm + "\"";
  if (!n.exe.empty()) out += ", exe " + n.exe;
  return out;
}

// Does this command line hand over from `old` (HAProxy's `-sf PID...` /
// `-st PID...`: the PIDs follow the flag until the next option)?
bool hands_over_from(const std::string& cmdline, pid_t old) {
  std::vector<std::string_view> args;
  std::string_view rest(cmdline);
  while (!rest.empty()) {
    const auto nul = rest.find('\0');
    args.push_back(rest.substr(0, nul));
    if (nul == std::string_view::npos) break;
    rest.remove_prefix(nul + 1);
  }
  const std::string want = std::to_string(old);
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] != "-sf" && args[i] != "-st") continue;
    for (std::size_t k = i + 1; k < args.size() && !args[k].starts_with('-'); ++k) {
      if (args[k] == want) return true;
    }
  }
  return false;
}

class ProcessWatcher : public std::enable_shared_from_this<ProcessWatcher> {
 public:
  ProcessWatcher(const boost::asio::any_io_executor& io, const config::CheckSpec& spec)
      : io_(io),
        pidfile_(spec.pidfile),
        name_(spec.process_name),
        reload_grace_(spec.reload_grace),
        pidfd_(io),
        inotify_(io),
        timer_(io),
        reload_timer_(io) {
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
    reload_timer_.cancel();
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
    if (std::string why = why_not_ours(pr.pid); !why.empty()) {
      r.reason = std::move(why);
      return r;
    }
    r.status = Status::Pass;
    r.reason = running(pr.pid);
    return r;
  }

  // "" if `pid` is alive (not a zombie) and ours (HAProxy by name), else why not.
  std::string why_not_ours(pid_t pid) const {
    if (dead_state(proc_state(pid))) return not_running(pid);
    if (const ProcName n = proc_name(pid); !name_matches(n, name_)) return not_ours(pid, n);
    return {};
  }

  std::string not_ours(pid_t pid, const ProcName& n) const {
    return "pid " + std::to_string(pid) + " in " + pidfile_ + " is not " + name_ + " (" +
           describe(n) + ")";
  }
  std::string exited(pid_t pid) const { return "haproxy pid " + std::to_string(pid) + " exited"; }

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
                        // Ask the pidfd itself before believing the wake-up:
                        // when one handler closes the old pidfd and assigns a
                        // new one, a readiness event already fetched for the
                        // old descriptor can be delivered to the new wait.
                        if (!pidfd_says_exited(self->pidfd_.native_handle())) {
                          self->arm_pidfd();
                          return;
                        }
                        self->on_exit();
                      });
  }

  // A pidfd polls readable once its process has exited.
  static bool pidfd_says_exited(int fd) {
    pollfd p{fd, POLLIN, 0};
    int rc;
    do {
      rc = ::poll(&p, 1, 0);
    } while (rc < 0 && errno == EINTR);
    return rc != 0;  // readable, or an error: trust the wake-up
  }

  // The watched process exited: reload or death? Decided before anything is
  // reported, so a seamless reload never shows as a failure.
  void on_exit() {
    const pid_t pid = watched_pid_;
    error_code ec;
    pidfd_.close(ec);
    watched_pid_ = 0;
    // 1. The pidfile already names the successor (written before the old
    //    process finished exiting).
    if (adopt_from_pidfile(pid)) {
      emit(false);
      return;
    }
    // 2. A successor that hands over from this PID is running but has not
    //    written the pidfile yet: wait for it, at most reload_grace.
    if (reload_grace_ > core::Duration{0}) {
      if (const pid_t successor = find_successor(pid); successor != 0) {
        reloading_ = true;
        reload_old_ = pid;
        reload_deadline_ = std::chrono::steady_clock::now() + reload_grace_;
        set(Status::Pass,
            exited(pid) + "; reload in progress (successor pid " + std::to_string(successor) + ")");
        emit(false);
        arm_reload_timer();
        return;
      }
    }
    // 3. Death.
    dead_pid_ = pid;
    set(Status::Fail, exited(pid));
    emit(false);
  }

  void arm_reload_timer() {
    reload_timer_.expires_after(kReloadPoll);
    reload_timer_.async_wait([self = shared_from_this()](const error_code& ec) {
      if (self->stopped_ || ec || !self->reloading_) return;
      self->on_reload_tick();
    });
  }

  void on_reload_tick() {
    if (adopt_from_pidfile(reload_old_)) {
      emit(false);
      return;
    }
    if (std::chrono::steady_clock::now() < reload_deadline_) {
      arm_reload_timer();
      return;
    }
    const pid_t old = reload_old_;
    end_reload();
    dead_pid_ = old;
    set(Status::Fail, exited(old) + "; no successor named in " + pidfile_ + " within " +
                          detail::ms_text(reload_grace_) + " (reload_grace)");
    emit(false);
  }

  void end_reload() {
    reloading_ = false;
    reload_old_ = 0;
    reload_timer_.cancel();
  }

  // The pidfile names a live HAProxy other than `old`: watch it. True if so.
  bool adopt_from_pidfile(pid_t old) {
    if (pidfile_.empty()) return false;
    const PidRead pr = read_pidfile(pidfile_);
    if (pr.pid == 0 || pr.pid == old) return false;
    std::string why;
    const int fd = open_live(pr.pid, why);
    if (fd < 0) return false;
    return adopt(fd, pr.pid);
  }

  // A live process (not `old`, of our process name) whose command line hands
  // over from `old`; 0 if none.
  pid_t find_successor(pid_t old) const {
    DIR* d = ::opendir("/proc");
    if (d == nullptr) return 0;
    pid_t found = 0;
    while (dirent* e = ::readdir(d)) {
      long long v = 0;
      const std::string_view name(e->d_name);
      const auto [ptr, ec] = std::from_chars(name.data(), name.data() + name.size(), v);
      if (ec != std::errc() || ptr != name.data() + name.size() || v <= 0) continue;
      const auto pid = static_cast<pid_t>(v);
      if (pid == old) continue;
      if (!hands_over_from(read_proc(pid, "cmdline", 64 * 1024), old)) continue;
      if (!why_not_ours(pid).empty()) continue;
      found = pid;
      break;
    }
    ::closedir(d);
    return found;
  }

  // pidfd of `pid` if it is alive and ours (HAProxy), else -1 with `why`.
  int open_live(pid_t pid, std::string& why) const {
    const int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    if (fd < 0) {
      const int err = errno;
      why = err == ESRCH ? not_running(pid)
                         : "pidfd_open(" + std::to_string(pid) + "): " + detail::errno_text(err);
      return -1;
    }
    why = why_not_ours(pid);
    if (!why.empty()) {
      ::close(fd);
      return -1;
    }
    return fd;
  }

  bool adopt(int fd, pid_t pid) {
    error_code ec;
    pidfd_.close(ec);  // pending wait (old pid) completes aborted
    pidfd_.assign(fd, ec);
    if (ec) {
      ::close(fd);
      watched_pid_ = 0;
      set(Status::Fail, "pidfd: " + ec.message());
      return false;
    }
    watched_pid_ = pid;
    dead_pid_ = 0;
    end_reload();
    set(Status::Pass, running(pid));
    arm_pidfd();
    return true;
  }

  // Re-reads the pidfile and updates watched pid / verdict (no report).
  void refresh() {
    if (pidfile_.empty()) {
      set(Status::Fail, "haproxy-process check: no pidfile configured");
      return;
    }
    const PidRead pr = read_pidfile(pidfile_);
    // A live watched process stays the truth, and so does a reload in flight;
    // after an exit the reason stays "exited" while the pidfile is rewritten
    // (truncate + write).
    const bool keep = watched_pid_ != 0 || reloading_;
    if (pr.pid == 0) {
      if (!keep && dead_pid_ == 0) set(Status::Fail, pr.error);
      return;
    }
    if (pr.pid == watched_pid_) return;
    if (pr.pid == dead_pid_) return;  // keeps "haproxy pid N exited"
    if (reloading_ && pr.pid == reload_old_) return;
    std::string why;
    const int fd = open_live(pr.pid, why);
    if (fd < 0) {
      if (!keep) set(Status::Fail, why);
      return;
    }
    adopt(fd, pr.pid);
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
  std::string pidfile_, name_, dir_, base_;
  core::Duration reload_grace_;
  asio::posix::stream_descriptor pidfd_;
  asio::posix::stream_descriptor inotify_;
  asio::steady_timer timer_;
  asio::steady_timer reload_timer_;
  bool reloading_ = false;
  pid_t reload_old_ = 0;
  std::chrono::steady_clock::time_point reload_deadline_{};
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

}  // namespace

std::unique_ptr<Probe> make_haproxy_process_probe(const boost::asio::any_io_executor& io,
                                                  const config::CheckSpec& spec) {
  return std::make_unique<detail::EventProbe<ProcessWatcher>>(io, spec);
}

}  // namespace beacon::health
