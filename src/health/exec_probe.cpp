// exec probe: run CheckSpec::command with a timeout; pass on exit 0.
//
// The child is started with posix_spawnp in its own process group, stdin from
// /dev/null, stdout+stderr into a pipe of which we keep the first line
// (bounded) for the failure reason and drain the rest so the child never
// blocks on a full pipe. Exit is learned from a pidfd (pidfd_open, Linux
// >= 5.3) waited on asynchronously; without pidfd we poll waitpid(WNOHANG)
// every 10 ms. On timeout, cancel() or superseding run(), the whole process
// group is SIGKILLed and the child is reaped in the background; on normal
// exit the group is SIGKILLed too (stragglers a check left behind) before
// reaping. Requires that the daemon does not set SIGCHLD to SIG_IGN and that
// nothing else calls waitpid(-1).
//
// One run at a time: run() while one is outstanding finishes the old one as
// Fail "superseded". Thread: everything runs on the io_context's thread.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "polled_probe_impl.hpp"
#include "probes_impl.hpp"

extern char** environ;

namespace beacon::health {
namespace {

namespace asio = boost::asio;
constexpr std::size_t kMaxOutput = 200;  // bytes of output kept for the reason

struct Child {
  explicit Child(const asio::any_io_executor& io) : pidfd(io), out(io), poll(io) {}
  pid_t pid = -1;
  bool reaped = false;
  int wait_status = 0;
  asio::posix::stream_descriptor pidfd;  // owned; invalid when pidfd_open failed
  asio::posix::stream_descriptor out;    // read end of the stdout/stderr pipe
  asio::steady_timer poll;               // fallback when pidfd is unavailable
  std::string output;
  std::array<char, 4096> chunk{};

  // Non-blocking reap; true once the child is gone.
  bool try_reap() {
    if (reaped) return true;
    int st = 0;
    pid_t r = ::waitpid(pid, &st, WNOHANG);
    if (r == pid || (r < 0 && errno == ECHILD)) {
      reaped = true;
      wait_status = r == pid ? st : -1;
    }
    return reaped;
  }
  void kill_group() const {
    if (!reaped) ::kill(-pid, SIGKILL);
  }
};

// Calls on_exit once the child has exited (zombie), without blocking.
void wait_exit(const std::shared_ptr<Child>& c, std::function<void()> on_exit) {
  if (c->pidfd.is_open()) {
    c->pidfd.async_wait(asio::posix::stream_descriptor::wait_read,
                        [c, on_exit](boost::system::error_code ec) {
                          if (ec == asio::error::operation_aborted) return;
                          on_exit();
                        });
    return;
  }
  c->poll.expires_after(std::chrono::milliseconds(10));
  c->poll.async_wait([c, on_exit](boost::system::error_code ec) {
    if (ec == asio::error::operation_aborted) return;
    siginfo_t info{};
    // WNOWAIT: look without reaping, so the group can still be killed first.
    if (::waitid(P_PID, static_cast<id_t>(c->pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
        info.si_pid == 0) {
      return wait_exit(c, on_exit);
    }
    on_exit();
  });
}

// Kills the group of an abandoned child and reaps it in the background; the
// handler keeps the Child alive until then.
void abandon(const std::shared_ptr<Child>& c) {
  c->kill_group();
  boost::system::error_code ec;
  c->out.close(ec);
  if (c->try_reap()) return;
  wait_exit(c, [c] {
    if (!c->try_reap()) abandon(c);
  });
}

std::string describe_exit(int st) {
  if (st == -1) return "exit status lost (SIGCHLD ignored?)";
  if (WIFEXITED(st)) return "exit " + std::to_string(WEXITSTATUS(st));
  if (WIFSIGNALED(st)) return "killed by signal " + std::to_string(WTERMSIG(st));
  return "status " + std::to_string(st);
}

std::string first_line(const std::string& out) {
  auto end = out.find('\n');
  std::string line = out.substr(0, end);
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
  return line;
}

class ExecImpl : public std::enable_shared_from_this<ExecImpl>, public detail::PolledRun<ExecImpl> {
 public:
  ExecImpl(const boost::asio::any_io_executor& io, const config::CheckSpec& spec)
      : PolledRun(io, spec), spec_(spec) {}

  void run(ResultFn done) {
    begin_run(std::move(done));
    if (spec_.command.empty() || spec_.command[0].empty())
      return post_fail("no command configured");
    std::string error;
    child_ = spawn(error);
    if (!child_) return post_fail("cannot run " + spec_.command[0] + ": " + error);
    const auto gen = generation_;
    auto self = shared_from_this();
    arm_deadline();
    read_output(child_, gen);
    wait_exit(child_, [self, gen, c = child_] {
      if (gen == self->generation_) self->on_exit(c);
    });
  }

 private:
  friend class detail::PolledRun<ExecImpl>;

  std::shared_ptr<Child> spawn(std::string& error) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
      error = std::strerror(errno);
      return nullptr;
    }
    ::fcntl(fds[0], F_SETFL, ::fcntl(fds[0], F_GETFL) | O_NONBLOCK);

    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);  // undo SIG_IGN (SIGPIPE) inherited from us
    posix_spawnattr_setpgroup(&attr, 0);         // own group: a timeout kills all of it
    posix_spawnattr_setflags(
        &attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    std::vector<char*> argv;
    for (const auto& a : spec_.command) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    pid_t pid = -1;
    int rc = ::posix_spawnp(&pid, argv[0], &fa, &attr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    ::close(fds[1]);
    if (rc != 0) {
      ::close(fds[0]);
      error = std::strerror(rc);
      return nullptr;
    }
    auto c = std::make_shared<Child>(io_);
    c->pid = pid;
    c->out.assign(fds[0]);
    int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    if (pidfd >= 0) c->pidfd.assign(pidfd);
    return c;
  }

  // Keeps the first kMaxOutput bytes and drains the rest.
  void read_output(const std::shared_ptr<Child>& c, std::uint64_t gen) {
    c->out.async_read_some(
        asio::buffer(c->chunk),
        [self = shared_from_this(), c, gen](boost::system::error_code ec, std::size_t n) {
          if (ec || !c->out.is_open()) return;  // eof, closed or aborted
          self->keep_output(*c, n);
          self->read_output(c, gen);
        });
  }

  void keep_output(Child& c, std::size_t n) {
    if (c.output.size() < kMaxOutput) {
      c.output.append(c.chunk.data(), std::min(n, kMaxOutput - c.output.size()));
    }
  }

  void on_exit(const std::shared_ptr<Child>& c) {
    c->kill_group();  // stragglers the command left in its group
    if (!c->try_reap()) {
      // Not reapable yet (should not happen after pidfd readiness): wait again.
      auto self = shared_from_this();
      return wait_exit(c, [self, gen = generation_, c] {
        if (gen == self->generation_) self->on_exit(c);
      });
    }
    // Output written just before exit may still sit in the pipe: the read end
    // is non-blocking, so drain what is there now.
    for (int i = 0; i < 64; ++i) {
      ssize_t n = ::read(c->out.native_handle(), c->chunk.data(), c->chunk.size());
      if (n <= 0) break;
      keep_output(*c, static_cast<std::size_t>(n));
    }
    const int st = c->wait_status;
    std::string reason = describe_exit(st);
    const bool ok = st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
    if (!ok) {
      std::string line = first_line(c->output);
      if (!line.empty()) reason += ": " + line;
    }
    finish(ok ? Status::Pass : Status::Fail, std::move(reason));
  }

  // PolledRun hook: the child of the run ends with it.
  void stop_io() {
    if (child_) abandon(child_);
    child_.reset();
  }

  config::CheckSpec spec_;
  std::shared_ptr<Child> child_;
};

}  // namespace

std::unique_ptr<Probe> make_exec_probe(const boost::asio::any_io_executor& io,
                                       const config::CheckSpec& spec) {
  return std::make_unique<detail::PolledProbe<ExecImpl>>(io, spec);
}

}  // namespace beacon::health
