// `file` check: a maintenance marker. Present -> Maintenance, absent -> Pass.
//
// Event-driven with inotify on the marker's parent directory (not polling):
// IN_CREATE / IN_MOVED_TO / IN_DELETE / IN_MOVED_FROM / IN_CLOSE_WRITE /
// IN_ATTRIB for the marker's name, plus the directory's own IN_DELETE_SELF /
// IN_MOVE_SELF / IN_IGNORED. Every relevant event re-checks the path with
// lstat(), so the verdict always reflects the file system, never the event
// alone ("present" = a directory entry exists, even a dangling symlink).
//
// Parent directory missing (or not watchable): the marker cannot exist, so
// the verdict is Pass with reason "... absent (directory D missing; polling)";
// a 1 s timer then retries the watch and the verdict switches to inotify as
// soon as the directory appears (the path is re-checked right after the watch
// is added, so a marker created together with the directory is not missed).
// The same applies when the directory is deleted or renamed away later.
// lstat() failing with anything but ENOENT/ENOTDIR (e.g. EACCES) is a Fail:
// a check that cannot run never passes.
#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/stat.h>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <memory>
#include <vector>

#include "event_probe_util.hpp"
#include "probes_impl.hpp"

namespace beacon::health {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;

constexpr auto kPollInterval = std::chrono::seconds(1);
constexpr std::uint32_t kDirMask = IN_CREATE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM |
                                   IN_CLOSE_WRITE | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF |
                                   IN_ONLYDIR;

class FileWatcher : public std::enable_shared_from_this<FileWatcher> {
 public:
  FileWatcher(const boost::asio::any_io_executor& io, const config::CheckSpec& spec)
      : io_(io), path_(spec.path), inotify_(io), timer_(io) {
    std::tie(dir_, base_) = detail::split_path(path_);
  }

  void watch(ResultFn on_change) {
    on_change_ = std::move(on_change);
    start();
    // The first report is posted (never re-entrant from watch()) and computed
    // when it runs, so it is the state at that moment.
    asio::post(io_, [self = shared_from_this()]() { self->evaluate(true); });
  }

  void run(ResultFn done) {
    Result r = compute();
    asio::post(io_, [self = shared_from_this(), done = std::move(done), r = std::move(r)]() {
      if (!self->stopped_) done(r);
    });
  }

  void cancel() {
    stopped_ = true;
    on_change_ = nullptr;
    timer_.cancel();
    error_code ec;
    inotify_.close(ec);
    wd_ = -1;
  }

 private:
  void start() {
    if (started_ || stopped_) return;
    started_ = true;
    const int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) {
      init_error_ = "inotify_init1: " + detail::errno_text(errno);
    } else {
      inotify_.assign(fd);
      add_watch();
      arm_read();
    }
    if (wd_ < 0) arm_poll();
  }

  void add_watch() {
    if (!inotify_.is_open()) return;
    wd_ = ::inotify_add_watch(inotify_.native_handle(), dir_.c_str(), kDirMask);
    watch_errno_ = wd_ < 0 ? errno : 0;
  }

  void arm_read() {
    inotify_.async_wait(asio::posix::stream_descriptor::wait_read,
                        [self = shared_from_this()](const error_code& ec) {
                          if (self->stopped_ || ec) return;
                          self->on_readable();
                        });
  }

  void on_readable() {
    bool relevant = false;
    bool lost_watch = false;
    const bool ok = detail::drain_inotify(
        inotify_.native_handle(), [&](const inotify_event& ev, const std::string& name) {
          if (ev.mask & IN_Q_OVERFLOW) relevant = true;
          if (ev.wd != wd_) return;
          if (ev.mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) {
            lost_watch = true;
            relevant = true;
          } else if (name == base_) {
            relevant = true;
          }
        });
    if (!ok) {  // should not happen; fall back to polling rather than go blind
      relevant = true;
      lost_watch = true;
    }
    if (lost_watch) {
      if (wd_ >= 0) ::inotify_rm_watch(inotify_.native_handle(), wd_);  // EINVAL if gone: fine
      wd_ = -1;
      add_watch();  // renamed dir: re-resolve the path now; else poll
      if (wd_ < 0) arm_poll();
    }
    if (relevant) evaluate(false);
    arm_read();
  }

  void arm_poll() {
    if (polling_ || stopped_) return;
    polling_ = true;
    timer_.expires_after(kPollInterval);
    timer_.async_wait([self = shared_from_this()](const error_code& ec) {
      self->polling_ = false;
      if (self->stopped_ || ec) return;
      self->add_watch();
      if (self->wd_ < 0) self->arm_poll();
      self->evaluate(false);
    });
  }

  Result compute() const {
    Result r;
    if (path_.empty()) {
      r.reason = "file check: no path configured";
      return r;
    }
    struct stat st {};
    if (::lstat(path_.c_str(), &st) == 0) {
      r.status = Status::Maintenance;
      r.reason = "maintenance file " + path_ + " present";
      return r;
    }
    const int err = errno;
    if (err != ENOENT && err != ENOTDIR) {
      r.status = Status::Fail;
      r.reason = "maintenance file " + path_ + ": " + detail::errno_text(err);
      return r;
    }
    r.status = Status::Pass;
    r.reason = "maintenance file " + path_ + " absent";
    if (started_ && wd_ < 0) {
      if (!init_error_.empty())
        r.reason += " (" + init_error_ + "; polling)";
      else if (watch_errno_ == ENOENT || watch_errno_ == ENOTDIR)
        r.reason += " (directory " + dir_ + " missing; polling)";
      else
        r.reason +=
            " (cannot watch " + dir_ + ": " + detail::errno_text(watch_errno_) + "; polling)";
    }
    return r;
  }

  void evaluate(bool force) {
    if (stopped_) return;
    Result r = compute();
    if (!filter_.update(r.status, r.reason) && !force) return;
    if (on_change_) on_change_(std::move(r));
  }

  asio::any_io_executor io_;
  std::string path_, dir_, base_;
  asio::posix::stream_descriptor inotify_;
  asio::steady_timer timer_;
  ResultFn on_change_;
  detail::ChangeFilter filter_;
  std::string init_error_;
  int wd_ = -1;
  int watch_errno_ = 0;
  bool started_ = false;
  bool polling_ = false;
  bool stopped_ = false;
};

}  // namespace

std::unique_ptr<Probe> make_file_probe(const boost::asio::any_io_executor& io,
                                       const config::CheckSpec& spec) {
  return std::make_unique<detail::EventProbe<FileWatcher>>(io, spec);
}

}  // namespace beacon::health
