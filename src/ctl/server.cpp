// Control socket server (ops loop). See server.hpp.
//
// Lifetime: the Server owns Impl; connections and pending handlers hold only
// weak references to it, so destroying the Server (after stop()) leaves every
// queued handler a no-op. Each connection keeps itself alive through the
// handler it has pending (shared_from_this) and is owned by Impl's set until
// it closes, so stop() can close them all.
#include "beacon/ctl/server.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <set>
#include <system_error>
#include <utility>

#include "beacon/util/errno_text.hpp"

namespace beacon::ctl {
namespace {

namespace asio = boost::asio;
using stream = asio::local::stream_protocol;

// The system category's message is strerror's text.
using util::errno_text;

enum class Probe { Absent, Stale, Live, NotSocket, Error };

// Is something already listening on `path`? Non-blocking connect, so a full
// backlog (EAGAIN) counts as live instead of hanging.
Probe probe_existing(const std::string& path, std::string& detail) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Probe::Absent;
    detail = errno_text(errno);
    return Probe::Error;
  }
  if (!S_ISSOCK(st.st_mode)) return Probe::NotSocket;
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    detail = errno_text(errno);
    return Probe::Error;
  }
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  int err = rc == 0 ? 0 : errno;
  ::close(fd);
  if (rc == 0 || err == EAGAIN || err == EINPROGRESS) return Probe::Live;
  if (err == ECONNREFUSED) return Probe::Stale;
  detail = errno_text(err);
  return Probe::Error;
}

}  // namespace

struct Server::Impl : std::enable_shared_from_this<Server::Impl> {
  class Connection;

  Impl(asio::io_context& io, ServerOptions opt, Dispatcher& d, std::shared_ptr<spdlog::logger> l)
      : io_(io),
        options_(std::move(opt)),
        dispatcher_(d),
        log_(std::move(l)),
        acceptor_(io),
        retry_timer_(io) {}

  void start();
  void stop();
  void accept();
  void remove(const std::shared_ptr<Connection>& c) { connections_.erase(c); }

  asio::io_context& io_;
  ServerOptions options_;
  Dispatcher& dispatcher_;
  std::shared_ptr<spdlog::logger> log_;
  stream::acceptor acceptor_;
  asio::steady_timer retry_timer_;
  std::set<std::shared_ptr<Connection>> connections_;
  bool running_ = false;
  bool bound_ = false;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
  std::uint64_t next_id_ = 1;
};

class Server::Impl::Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(std::weak_ptr<Impl> owner, stream::socket socket, std::uint64_t id)
      : owner_(std::move(owner)), socket_(std::move(socket)), id_(id) {
    // Read once, now: SO_PEERCRED holds the identity the peer had when it
    // connected, and the groups are best read while that process is alive.
    caller_.credentials = read_peer_credentials(socket_.native_handle());
  }

  const Caller& caller() const { return caller_; }

  void start() { read(); }

  // Over the connection limit: one error line, then close.
  void reject(const std::string& message) {
    out_ = dump_json(error_response(message)) + "\n";
    close_after_write_ = true;
    write();
  }

  void close() {
    boost::system::error_code ignored;
    socket_.shutdown(stream::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

  std::uint64_t id() const { return id_; }

 private:
  void read() {
    socket_.async_read_some(asio::buffer(chunk_),
                            [self = shared_from_this()](boost::system::error_code ec,
                                                        std::size_t n) { self->on_read(ec, n); });
  }

  void on_read(boost::system::error_code ec, std::size_t n) {
    auto owner = owner_.lock();
    if (!owner || !owner->running_) return;
    if (ec) {
      if (ec != asio::error::eof && ec != asio::error::operation_aborted &&
          ec != asio::error::connection_reset) {
        owner->log_->debug("control connection {}: read error: {}", id_, ec.message());
      }
      finish(*owner);
      return;
    }
    try {
      in_.append(chunk_.data(), n);
      process(*owner);
    } catch (const std::exception& e) {
      // Whatever one request does, only this connection pays: it gets an
      // error line and is closed; the ops loop and every other client go on.
      fail(*owner, e.what());
    } catch (...) {
      fail(*owner, "unknown exception");
    }
    if (out_.empty()) {
      read();
    } else {
      write();
    }
  }

  // Answers every complete line in in_, in order; flags an oversized line.
  void process(Impl& owner) {
    const std::size_t max = owner.options_.max_line;
    std::size_t start = 0;
    for (;;) {
      std::size_t nl = in_.find('\n', start);
      if (nl == std::string::npos) break;
      std::string_view line(in_.data() + start, nl - start);
      start = nl + 1;
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line.size() > max) {
        oversized(owner, max);
        return;
      }
      if (line.find_first_not_of(" \t") == std::string_view::npos) continue;  // blank line
      out_ += owner.dispatcher_.handle(line, caller_);
      out_ += '\n';
    }
    in_.erase(0, start);
    if (in_.size() > max) oversized(owner, max);
  }

  void fail(Impl& owner, const char* what) {
    owner.log_->error("control connection {}: request failed: {}; closing the connection", id_,
                      what);
    in_.clear();
    // A literal, not dump_json(): this runs after an exception (perhaps out of
    // memory) and must not throw again.
    out_ =
        R"({"ok":false,"error":"internal error while handling the request; closing connection"})";
    out_ += '\n';
    close_after_write_ = true;
  }

  void oversized(Impl& owner, std::size_t max) {
    owner.log_->warn("control connection {}: request line longer than {} bytes, closing", id_, max);
    out_ += dump_json(error_response("request line exceeds " + std::to_string(max) +
                                     " bytes; closing connection")) +
            "\n";
    in_.clear();
    close_after_write_ = true;
  }

  void write() {
    asio::async_write(socket_, asio::buffer(out_),
                      [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                        self->on_write(ec);
                      });
  }

  void on_write(boost::system::error_code ec) {
    auto owner = owner_.lock();
    if (!owner || !owner->running_) return;
    out_.clear();
    if (ec || close_after_write_) {
      finish(*owner);
      return;
    }
    read();
  }

  void finish(Impl& owner) {
    close();
    owner.log_->debug("control connection {} closed", id_);
    owner.remove(shared_from_this());
  }

  std::weak_ptr<Impl> owner_;
  stream::socket socket_;
  std::uint64_t id_;
  Caller caller_;
  std::array<char, 4096> chunk_{};
  std::string in_;
  std::string out_;
  bool close_after_write_ = false;
};

void Server::Impl::start() {
  const std::string& path = options_.path;
  if (path.empty()) throw ServerError("control socket path is empty");
  if (path.size() >= sizeof(sockaddr_un::sun_path)) {
    throw ServerError("control socket path too long (" + std::to_string(path.size()) +
                      " bytes, at most " + std::to_string(sizeof(sockaddr_un::sun_path) - 1) +
                      "): " + path);
  }

  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    if (!std::filesystem::exists(parent, ec)) {
      std::filesystem::create_directories(parent, ec);
      if (!ec) {
        std::filesystem::permissions(parent, std::filesystem::perms(0755),
                                     std::filesystem::perm_options::replace, ec);
      }
      if (ec) {
        throw ServerError("cannot create directory " + parent.string() +
                          " for control socket: " + ec.message());
      }
    }
  }

  std::string detail;
  switch (probe_existing(path, detail)) {
    case Probe::Absent:
      break;
    case Probe::Stale:
      if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
        throw ServerError("cannot remove stale control socket " + path + ": " + errno_text(errno));
      }
      log_->info("removed stale control socket {}", path);
      break;
    case Probe::Live:
      throw ServerError("control socket " + path +
                        " is in use by a running process (another bfd-beacon?)");
    case Probe::NotSocket:
      throw ServerError("control socket path " + path + " exists and is not a socket");
    case Probe::Error:
      throw ServerError("cannot check control socket " + path + ": " + detail);
  }

  boost::system::error_code ec;
  stream::endpoint ep(path);
  acceptor_.open(ep.protocol(), ec);
  if (!ec) acceptor_.bind(ep, ec);
  if (ec) {
    acceptor_.close();
    throw ServerError("cannot bind control socket " + path + ": " + ec.message());
  }
  bound_ = true;
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    dev_ = st.st_dev;
    ino_ = st.st_ino;
  }
  // bind() created the file with the umask's mode; tighten or widen it now,
  // before listen(), so no client connects while the mode is wrong.
  if (::chmod(path.c_str(), static_cast<mode_t>(options_.mode)) != 0) {
    int err = errno;
    stop();
    throw ServerError("cannot set mode of control socket " + path + ": " + errno_text(err));
  }
  // The group is who can connect at all (mode 0660). A failure here only
  // narrows who can connect, so the daemon goes on with a warning.
  if (options_.group && ::chown(path.c_str(), static_cast<uid_t>(-1), *options_.group) != 0) {
    log_->warn(
        "cannot set the group of control socket {} to gid {}: {}; members of that group "
        "cannot connect",
        path, *options_.group, errno_text(errno));
  }
  acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    stop();
    throw ServerError("cannot listen on control socket " + path + ": " + ec.message());
  }
  running_ = true;
  log_->info("control socket listening on {}", path);
  accept();
}

void Server::Impl::accept() {
  acceptor_.async_accept(
      [weak = weak_from_this()](boost::system::error_code ec, stream::socket socket) {
        auto self = weak.lock();
        if (!self || !self->running_) return;
        if (ec) {
          if (ec == asio::error::operation_aborted) return;
          // EMFILE and friends: keep serving the clients we have, and retry
          // after a pause instead of spinning on a persistent error.
          self->log_->warn("control socket accept failed: {}", ec.message());
          self->retry_timer_.expires_after(std::chrono::milliseconds(200));
          self->retry_timer_.async_wait([weak](boost::system::error_code tec) {
            auto s = weak.lock();
            if (!tec && s && s->running_) s->accept();
          });
          return;
        } else {
          auto conn = std::make_shared<Connection>(weak, std::move(socket), self->next_id_++);
          self->connections_.insert(conn);
          if (self->connections_.size() > self->options_.max_connections) {
            conn->reject("too many control connections (at most " +
                         std::to_string(self->options_.max_connections) + ")");
          } else {
            const PeerCredentials& who = conn->caller().credentials;
            if (who.known) {
              self->log_->debug("control connection {} opened by uid {} gid {} pid {}", conn->id(),
                                who.uid, who.gid, who.pid);
            } else {
              self->log_->warn(
                  "control connection {}: peer credentials unavailable; every request on it "
                  "will be refused",
                  conn->id());
            }
            conn->start();
          }
        }
        self->accept();
      });
}

void Server::Impl::stop() {
  running_ = false;
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  retry_timer_.cancel();
  for (const auto& c : connections_) c->close();
  connections_.clear();
  if (bound_) {
    bound_ = false;
    // Unlink only our own socket file, not one a successor has bound since.
    struct stat st {};
    if (::lstat(options_.path.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_) {
      ::unlink(options_.path.c_str());
    }
  }
}

Server::Server(asio::io_context& io, ServerOptions options, Dispatcher& dispatcher,
               std::shared_ptr<spdlog::logger> log)
    : impl_(std::make_shared<Impl>(io, std::move(options), dispatcher, std::move(log))) {}

Server::~Server() {
  impl_->stop();
}

void Server::start() {
  impl_->start();
}
void Server::stop() {
  impl_->stop();
}
const std::string& Server::path() const {
  return impl_->options_.path;
}
std::size_t Server::connection_count() const {
  return impl_->connections_.size();
}

}  // namespace beacon::ctl
