// Constructors of the concrete probes; make_probe() (probe_factory.cpp)
// dispatches on CheckSpec::type. Private to src/health.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <memory>

#include "beacon/config/config.hpp"
#include "beacon/health/probe.hpp"

namespace beacon::health {

// polled: haproxy_http.cpp, haproxy_socket.cpp, exec_probe.cpp
std::unique_ptr<Probe> make_haproxy_http_probe(const boost::asio::any_io_executor& io,
                                               const config::CheckSpec& spec);
std::unique_ptr<Probe> make_haproxy_socket_probe(const boost::asio::any_io_executor& io,
                                                 const config::CheckSpec& spec);
std::unique_ptr<Probe> make_exec_probe(const boost::asio::any_io_executor& io,
                                       const config::CheckSpec& spec);
// event-driven: haproxy_process.cpp, interface_probe.cpp, file_probe.cpp
std::unique_ptr<Probe> make_haproxy_process_probe(const boost::asio::any_io_executor& io,
                                                  const config::CheckSpec& spec);
std::unique_ptr<Probe> make_interface_probe(const boost::asio::any_io_executor& io,
                                            const config::CheckSpec& spec);
std::unique_ptr<Probe> make_file_probe(const boost::asio::any_io_executor& io,
                                       const config::CheckSpec& spec);

// The same on an io_context's own executor (tests, tools).
inline std::unique_ptr<Probe> make_haproxy_http_probe(boost::asio::io_context& io,
                                                      const config::CheckSpec& spec) {
  return make_haproxy_http_probe(io.get_executor(), spec);
}
inline std::unique_ptr<Probe> make_haproxy_socket_probe(boost::asio::io_context& io,
                                                        const config::CheckSpec& spec) {
  return make_haproxy_socket_probe(io.get_executor(), spec);
}
inline std::unique_ptr<Probe> make_exec_probe(boost::asio::io_context& io,
                                              const config::CheckSpec& spec) {
  return make_exec_probe(io.get_executor(), spec);
}
inline std::unique_ptr<Probe> make_haproxy_process_probe(boost::asio::io_context& io,
                                                         const config::CheckSpec& spec) {
  return make_haproxy_process_probe(io.get_executor(), spec);
}
inline std::unique_ptr<Probe> make_interface_probe(boost::asio::io_context& io,
                                                   const config::CheckSpec& spec) {
  return make_interface_probe(io.get_executor(), spec);
}
inline std::unique_ptr<Probe> make_file_probe(boost::asio::io_context& io,
                                              const config::CheckSpec& spec) {
  return make_file_probe(io.get_executor(), spec);
}

}  // namespace beacon::health
