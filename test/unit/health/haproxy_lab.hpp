// Test support for the HAProxy probes: a real HAProxy (/usr/sbin/haproxy,
// Debian 2.6) started from the test on 127.0.0.1 with a generated config,
// a TCP "backend server" the test can switch on and off, and helpers to run
// a probe on an io_context with bounded time. Loopback only; every process
// started here is killed by PID and reaped.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>

#include "beacon/health/probe.hpp"

namespace beacon::health::testing {

using namespace std::chrono_literals;

// A free TCP port on 127.0.0.1 (bind to 0, read it back, close).
inline int pick_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// Listening TCP socket on 127.0.0.1:port. With accept_and_close, a thread
// accepts and closes every connection (an HAProxy L4 check sees "UP");
// without it, connections complete in the backlog and are never answered.
class TcpListener {
 public:
  TcpListener(int port, bool accept_and_close) : port_(port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, 64) != 0) {
      ::close(fd_);
      throw std::runtime_error("cannot listen on 127.0.0.1:" + std::to_string(port));
    }
    if (accept_and_close) {
      thread_ = std::thread([this] {
        while (!stop_) {
          pollfd p{fd_, POLLIN, 0};
          if (::poll(&p, 1, 20) > 0) {
            int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (c >= 0) ::close(c);
          }
        }
      });
    }
  }
  ~TcpListener() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    ::close(fd_);
  }
  int port() const { return port_; }

 private:
  int port_;
  int fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Waits (bounded) until pid has exited and reaps it; SIGKILL after `grace`.
inline void reap(pid_t pid, std::chrono::milliseconds grace = 3000ms) {
  auto until = std::chrono::steady_clock::now() + grace;
  while (::waitpid(pid, nullptr, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > until) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      return;
    }
    std::this_thread::sleep_for(10ms);
  }
}

inline bool log_contains(const std::string& file, const std::string& text) {
  std::ifstream in(file);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str().find(text) != std::string::npos;
}

inline bool unix_connectable(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

// A real HAProxy in the foreground (-db), optionally master-worker (-W).
// Frontend "fe" with monitor-uri /beacon-health failing when backend "be"
// has no usable server; "be" has s1 -> server_port (switchable by the test)
// and s2 -> a port nobody listens on (always DOWN). Checks every 100 ms,
// rise 1 / fall 1, so a flip shows within a few hundred milliseconds.
class HaproxyLab {
 public:
  HaproxyLab() {
    char tmpl[] = "/tmp/beacon-haproxy-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    frontend_port_ = pick_port();
    server_port_ = pick_port();
    dead_port_ = pick_port();
  }
  ~HaproxyLab() {
    stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  const std::string& dir() const { return dir_; }
  std::string socket_path() const { return dir_ + "/admin.sock"; }
  int frontend_port() const { return frontend_port_; }
  int server_port() const { return server_port_; }
  std::string monitor_url() const {
    return "http://127.0.0.1:" + std::to_string(frontend_port_) + "/beacon-health";
  }
  pid_t pid() const { return pid_; }

  // Starts HAProxy and waits (bounded) until its stats socket answers.
  // Returns false (with the log in `error`) if it did not come up.
  bool start(bool master_worker, std::string& error) {
    write_config();
    std::string log = dir_ + "/haproxy.log";
    pid_ = ::fork();
    if (pid_ == 0) {
      int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      std::string cfg = dir_ + "/haproxy.cfg";
      if (master_worker) {
        ::execl("/usr/sbin/haproxy", "haproxy", "-W", "-db", "-f", cfg.c_str(), nullptr);
      } else {
        ::execl("/usr/sbin/haproxy", "haproxy", "-db", "-f", cfg.c_str(), nullptr);
      }
      ::_exit(127);
    }
    auto until = std::chrono::steady_clock::now() + 5s;
    while (std::chrono::steady_clock::now() < until) {
      // A master-worker master handles SIGUSR2 only once it logged success.
      if (unix_connectable(socket_path()) &&
          (!master_worker || log_contains(log, "Loading success"))) {
        return true;
      }
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        break;
      }
      std::this_thread::sleep_for(20ms);
    }
    std::ifstream in(log);
    std::stringstream ss;
    ss << in.rdbuf();
    error = "haproxy did not start: " + ss.str();
    stop();
    return false;
  }

  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    reap(pid_);
    pid_ = -1;
    std::error_code ec;
    std::filesystem::remove(socket_path(), ec);
  }

  std::string log() const {
    std::ifstream in(dir_ + "/haproxy.log");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  // Master-worker reload (new worker, new Pid). The master blocks SIGUSR2
  // for a while after "Loading success" and drops what arrived meanwhile, so
  // wait (bounded) until /proc shows it catching and not blocking SIGUSR2.
  bool reload() const {
    const unsigned long long usr2 = 1ull << (SIGUSR2 - 1);
    auto until = std::chrono::steady_clock::now() + 5s;
    while (std::chrono::steady_clock::now() < until) {
      std::ifstream st("/proc/" + std::to_string(pid_) + "/status");
      std::string line;
      unsigned long long blocked = usr2, caught = 0;
      while (std::getline(st, line)) {
        if (line.rfind("SigBlk:", 0) == 0) blocked = std::stoull(line.substr(7), nullptr, 16);
        if (line.rfind("SigCgt:", 0) == 0) caught = std::stoull(line.substr(7), nullptr, 16);
      }
      if ((caught & usr2) && !(blocked & usr2)) return ::kill(pid_, SIGUSR2) == 0;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }

 private:
  void write_config() const {
    std::ofstream f(dir_ + "/haproxy.cfg");
    f << "global\n"
      << "  stats socket " << socket_path() << " mode 600 level admin\n"
      << "  nbthread 1\n"
      << "  maxconn 200\n"
      << "defaults\n"
      << "  mode http\n"
      << "  timeout connect 1s\n"
      << "  timeout client 5s\n"
      << "  timeout server 5s\n"
      << "frontend fe\n"
      << "  bind 127.0.0.1:" << frontend_port_ << "\n"
      << "  monitor-uri /beacon-health\n"
      << "  monitor fail if { nbsrv(be) lt 1 }\n"
      << "  default_backend be\n"
      << "backend be\n"
      << "  server s1 127.0.0.1:" << server_port_ << " check inter 100 rise 1 fall 1\n"
      << "  server s2 127.0.0.1:" << dead_port_ << " check inter 100 rise 1 fall 1\n";
  }

  std::string dir_;
  int frontend_port_ = 0, server_port_ = 0, dead_port_ = 0;
  pid_t pid_ = -1;
};

// Runs probe.run() once on io; returns the result, or nullopt if none came
// within `limit` (which is itself a failure of the probe contract).
inline std::optional<Result> run_once(boost::asio::io_context& io, Probe& probe,
                                      std::chrono::milliseconds limit = 5000ms) {
  std::optional<Result> out;
  int calls = 0;
  probe.run([&](Result r) {
    ++calls;
    out = std::move(r);
  });
  io.restart();
  auto until = std::chrono::steady_clock::now() + limit;
  while (!out && std::chrono::steady_clock::now() < until) io.run_for(10ms);
  return out;
}

// Re-runs the probe (every 50 ms, bounded) until `want` holds; returns the
// last result.
inline std::optional<Result> run_until(boost::asio::io_context& io, Probe& probe,
                                       const std::function<bool(const Result&)>& want,
                                       std::chrono::milliseconds limit = 6000ms) {
  std::optional<Result> last;
  auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    last = run_once(io, probe);
    if (last && want(*last)) return last;
    std::this_thread::sleep_for(50ms);
  }
  return last;
}

// Periodic 10 ms timer on the io_context under test; records the worst
// lateness, proving the loop was never blocked while a probe waited.
class LoopWatch {
 public:
  explicit LoopWatch(boost::asio::io_context& io) : timer_(io) {}
  void start() {
    next_ = std::chrono::steady_clock::now() + 10ms;
    arm();
  }
  void stop() {
    stopped_ = true;
    timer_.cancel();
  }
  int ticks() const { return ticks_; }
  std::chrono::milliseconds worst_lateness() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(worst_);
  }

 private:
  void arm() {
    timer_.expires_at(next_);
    timer_.async_wait([this](boost::system::error_code ec) {
      if (ec || stopped_) return;
      auto late = std::chrono::steady_clock::now() - next_;
      if (late > worst_) worst_ = late;
      ++ticks_;
      next_ += 10ms;
      arm();
    });
  }
  boost::asio::steady_timer timer_;
  std::chrono::steady_clock::time_point next_{};
  std::chrono::steady_clock::duration worst_{};
  int ticks_ = 0;
  bool stopped_ = false;
};

inline std::chrono::milliseconds to_ms(core::Duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d);
}

}  // namespace beacon::health::testing
