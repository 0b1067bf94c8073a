// `bfdctl watch` on a terminal: the alternate screen, redrawn in place each
// interval (and at once on a resize), non-canonical input so `q` quits
// without Enter. The terminal is restored on every way out: `q`, Ctrl-C
// (SIGINT), SIGTERM, SIGHUP, a failed write, an exception (the Terminal
// destructor), and around Ctrl-Z (SIGTSTP) so the shell gets a sane terminal
// while the view is stopped.
//
// Signal handlers only write the signal number to a self-pipe; everything
// else happens in the loop, where it is safe.
#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <optional>
#include <ostream>
#include <tuple>

#include "watch_impl.hpp"

namespace beacon::ctl {
namespace {

int g_signal_pipe = -1;  // write end; the handlers' only state

extern "C" void watch_on_signal(int signo) {
  const int saved = errno;
  const auto b = static_cast<unsigned char>(signo);
  [[maybe_unused]] ssize_t n = ::write(g_signal_pipe, &b, 1);
  errno = saved;
}

constexpr std::array<int, 6> kSignals = {SIGINT, SIGTERM, SIGHUP, SIGWINCH, SIGTSTP, SIGCONT};

enum class Event { Timeout, Quit, Redraw };

class Terminal {
 public:
  Terminal(int in, int out, std::ostream& os) : in_(in), out_(out), os_(os) {
    if (::pipe2(pipe_.data(), O_CLOEXEC | O_NONBLOCK) != 0) return;
    if (::tcgetattr(in_, &saved_) != 0) return;
    have_saved_ = true;
    g_signal_pipe = pipe_[1];
    for (std::size_t i = 0; i < kSignals.size(); ++i) {
      struct sigaction sa {};
      sa.sa_handler = watch_on_signal;
      sigemptyset(&sa.sa_mask);
      sa.sa_flags = SA_RESTART;
      ::sigaction(kSignals[i], &sa, &old_[i]);
    }
    enter();
    ok_ = true;
  }

  ~Terminal() {
    if (have_saved_) {
      leave();
      for (std::size_t i = 0; i < kSignals.size(); ++i) ::sigaction(kSignals[i], &old_[i], nullptr);
      g_signal_pipe = -1;
    }
    for (int fd : pipe_) {
      if (fd >= 0) ::close(fd);
    }
  }
  Terminal(const Terminal&) = delete;
  Terminal& operator=(const Terminal&) = delete;

  bool ok() const { return ok_; }

  std::pair<std::size_t, std::size_t> size() const {
    winsize ws{};
    if (::ioctl(out_, TIOCGWINSZ, &ws) != 0 || ws.ws_row == 0 || ws.ws_col == 0) return {24, 80};
    return {ws.ws_row, ws.ws_col};
  }

  // Waits up to `d` for a key or a signal.
  Event wait(std::chrono::milliseconds d) {
    const auto until = std::chrono::steady_clock::now() + d;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          until - std::chrono::steady_clock::now());
      if (left.count() <= 0) return Event::Timeout;
      std::array<pollfd, 2> fds{{{in_, POLLIN, 0}, {pipe_[0], POLLIN, 0}}};
      const int n = ::poll(fds.data(), fds.size(), static_cast<int>(left.count()));
      if (n < 0 && errno != EINTR) return Event::Quit;
      if (fds[1].revents & POLLIN) {
        if (auto e = on_signals()) return *e;
      }
      if (fds[0].revents & (POLLHUP | POLLERR)) return Event::Quit;
      if (fds[0].revents & POLLIN) {
        std::array<char, 64> buf{};
        const ssize_t got = ::read(in_, buf.data(), buf.size());
        if (got == 0) return Event::Quit;  // the terminal went away
        for (ssize_t i = 0; i < got; ++i) {
          if (buf[i] == 'q' || buf[i] == 'Q' || buf[i] == '\x03') return Event::Quit;
          if (buf[i] == ' ' || buf[i] == 'r') return Event::Redraw;
        }
      }
    }
  }

 private:
  void enter() {
    termios raw = saved_;
    // Non-canonical, no echo: single keys arrive at once. ISIG stays on so
    // Ctrl-C and Ctrl-Z still raise their signals; OPOST stays on so "\n"
    // still starts a new line.
    raw.c_lflag &= static_cast<tcflag_t>(~(ICANON | ECHO));
    raw.c_cc[VMIN] = 0;
    raw.c_cc[VTIME] = 0;
    ::tcsetattr(in_, TCSANOW, &raw);
    os_ << "\x1b[?1049h\x1b[?25l" << std::flush;  // alternate screen, hide cursor
  }

  void leave() {
    os_ << "\x1b[?25h\x1b[?1049l" << std::flush;  // show cursor, main screen
    ::tcsetattr(in_, TCSANOW, &saved_);
  }

  // Ctrl-Z: give the shell its terminal back, stop, and take it again on
  // continue.
  void suspend() {
    leave();
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    struct sigaction mine {};
    ::sigaction(SIGTSTP, &dfl, &mine);
    ::raise(SIGTSTP);  // stops here until SIGCONT
    ::sigaction(SIGTSTP, &mine, nullptr);
    ::tcgetattr(in_, &saved_);  // the shell may have changed modes meanwhile
    enter();
  }

  std::optional<Event> on_signals() {
    std::array<unsigned char, 32> sigs{};
    std::optional<Event> e;
    ssize_t n;
    while ((n = ::read(pipe_[0], sigs.data(), sigs.size())) > 0) {
      for (ssize_t i = 0; i < n; ++i) {
        const int s = sigs[i];
        if (s == SIGINT || s == SIGTERM || s == SIGHUP) return Event::Quit;
        if (s == SIGTSTP) suspend();
        e = Event::Redraw;  // resize, continue, back from a stop
      }
    }
    return e;
  }

  int in_, out_;
  std::ostream& os_;
  std::array<int, 2> pipe_{-1, -1};
  termios saved_{};
  bool have_saved_ = false;
  bool ok_ = false;
  std::array<struct sigaction, kSignals.size()> old_{};
};

void draw(std::ostream& os, const std::vector<std::string>& lines) {
  std::string frame = "\x1b[H";  // home; each line clears what is left of the old one
  for (std::size_t i = 0; i < lines.size(); ++i) {
    frame += lines[i] + "\x1b[K";
    if (i + 1 < lines.size()) frame += "\n";
  }
  frame += "\x1b[J";  // and everything below
  os << frame << std::flush;
}

}  // namespace

int run_watch_tty(const CtlArgs& a, const Transport& transport, std::ostream& out,
                  std::ostream& err, const CtlEnv& env) {
  Terminal term(env.tty_in_fd, env.tty_out_fd, out);
  if (!term.ok()) {
    err << "bfdctl: watch: cannot set up the terminal: " << std::strerror(errno) << "\n";
    return kExitRefused;
  }
  const Style style = Style::detect(true, env.no_color);
  bool reached = false;
  for (std::uint64_t i = 0; !a.count || i < *a.count; ++i) {
    WatchData d = fetch_watch_data(transport, a);
    reached = d.reachable;
    FrameOptions fo;
    std::tie(fo.rows, fo.cols) = term.size();
    fo.style = style;
    fo.now = env.now ? env.now() : std::chrono::system_clock::now();
    fo.source = a.socket;
    fo.refresh = refresh_text(a.interval);
    fo.interactive = true;
    draw(out, render_watch_frame(d, fo));
    if (!out) return kExitRefused;
    if (a.count && i + 1 == *a.count) break;
    // A resize, a continue after Ctrl-Z or a key asking for it (space, r)
    // refresh at once; otherwise the interval passes.
    if (term.wait(a.interval) == Event::Quit) return kExitOk;
  }
  return reached ? kExitOk : kExitUnreachable;
}

}  // namespace beacon::ctl
