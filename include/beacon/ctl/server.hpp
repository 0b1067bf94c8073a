// Control socket server: a UNIX stream socket speaking the protocol of
// protocol.hpp, one request per line, one response per line, in order.
//
// Runs on the ops loop's io_context (never the engine loop). Every client has
// its own connection object with a bounded read buffer; a request line longer
// than max_line gets an error response and the connection is closed. Other
// bad requests get an error response and the connection stays open.
//
// Each connection's peer credentials (SO_PEERCRED, plus the supplementary
// groups of the peer's process) are read once when it is accepted and passed
// with every request to the dispatcher, which decides what the caller may do
// (access.hpp). The socket file's mode and group are the first gate: only
// its group (read_group) can connect at all.
//
// Thread: construct, start() and stop() on the thread that runs the
// io_context, or before it runs / after it has stopped.
#pragma once

#include <spdlog/logger.h>
#include <sys/types.h>

#include <boost/asio/io_context.hpp>
#include <cstddef>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include "beacon/ctl/protocol.hpp"

namespace beacon::ctl {

// start() failed: path too long, parent not creatable, another daemon live on
// the socket, bind error. what() names the path.
struct ServerError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct ServerOptions {
  std::string path;                        // socket file
  std::size_t max_line = kMaxRequestLine;  // bytes per request line
  std::size_t max_connections = 64;        // beyond: error response, close
  unsigned mode = 0660;                    // socket file permissions
  // Group of the socket file (chown to it; the owner stays the daemon's
  // user); nullopt leaves the group bind() gave it.
  std::optional<gid_t> group = std::nullopt;
};

class Server {
 public:
  Server(boost::asio::io_context& io, ServerOptions options, Dispatcher& dispatcher,
         std::shared_ptr<spdlog::logger> log);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Creates the parent directory (0755) if missing, removes a stale socket
  // file (refuses if a live server answers on it), binds, sets the mode and
  // the group and starts accepting. Throws ServerError (a failed chown is
  // only a warning: the socket then admits fewer callers, never more).
  void start();
  // Stops accepting, closes every connection, unlinks the socket file.
  // Idempotent.
  void stop();

  const std::string& path() const;
  std::size_t connection_count() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace beacon::ctl
