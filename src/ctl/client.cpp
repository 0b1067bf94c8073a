// bfdctl's side of the control socket: connect, send one line, read one line,
// all under one deadline (io_context::run_for).
#include "beacon/ctl/client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>
#include <exception>

#include "beacon/ctl/protocol.hpp"

namespace beacon::ctl {
namespace {

namespace asio = boost::asio;
using stream = asio::local::stream_protocol;

constexpr std::size_t kMaxResponse = 64 * 1024 * 1024;  // thousands of sessions fit

}  // namespace

ClientResult request(const std::string& socket_path, const nlohmann::json& req,
                     std::chrono::milliseconds timeout) {
  ClientResult result;
  result.status = ClientResult::Status::Unreachable;
  asio::io_context io;
  stream::socket socket(io);
  std::string out = dump_json(req) + "\n";
  std::string in;
  bool done = false;

  stream::endpoint ep;
  try {
    ep = stream::endpoint(socket_path);
  } catch (const std::exception& e) {
    result.error = "invalid control socket path " + socket_path + ": " + e.what();
    return result;
  }

  auto fail = [&](const std::string& what, const boost::system::error_code& ec) {
    result.error = what + " control socket " + socket_path + ": " + ec.message();
    done = true;
  };
  socket.async_connect(ep, [&](boost::system::error_code ec) {
    if (ec) return fail("cannot connect to", ec);
    asio::async_write(socket, asio::buffer(out), [&](boost::system::error_code ec, std::size_t) {
      if (ec) return fail("cannot send request to", ec);
      asio::async_read_until(socket, asio::dynamic_buffer(in, kMaxResponse), '\n',
                             [&](boost::system::error_code ec, std::size_t n) {
                               if (ec) return fail("no response from", ec);
                               done = true;
                               try {
                                 result.response = nlohmann::json::parse(in.substr(0, n));
                               } catch (const std::exception& e) {
                                 result.status = ClientResult::Status::BadResponse;
                                 result.error = "invalid response from control socket " +
                                                socket_path + ": " + e.what();
                                 return;
                               }
                               if (!result.response.is_object() ||
                                   !result.response.contains("ok") ||
                                   !result.response["ok"].is_boolean()) {
                                 result.status = ClientResult::Status::BadResponse;
                                 result.error = "invalid response from control socket " +
                                                socket_path + ": not a protocol response object";
                                 return;
                               }
                               result.status = ClientResult::Status::Ok;
                             });
    });
  });
  io.run_for(timeout);
  if (!done) {
    result.status = ClientResult::Status::Unreachable;
    result.error = "timed out after " + std::to_string(timeout.count()) +
                   " ms waiting for control socket " + socket_path;
  }
  return result;
}

}  // namespace beacon::ctl
