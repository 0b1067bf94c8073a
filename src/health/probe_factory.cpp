#include <stdexcept>

#include "probes_impl.hpp"

namespace beacon::health {

std::string_view status_name(Status s) {
  switch (s) {
    case Status::Pass:
      return "pass";
    case Status::Fail:
      return "fail";
    case Status::Maintenance:
      return "maintenance";
  }
  return "fail";
}

std::unique_ptr<Probe> make_probe(const boost::asio::any_io_executor& io,
                                  const config::CheckSpec& spec) {
  if (spec.type == "haproxy-http") return make_haproxy_http_probe(io, spec);
  if (spec.type == "haproxy-socket") return make_haproxy_socket_probe(io, spec);
  if (spec.type == "exec") return make_exec_probe(io, spec);
  if (spec.type == "haproxy-process") return make_haproxy_process_probe(io, spec);
  if (spec.type == "interface") return make_interface_probe(io, spec);
  if (spec.type == "file") return make_file_probe(io, spec);
  throw std::invalid_argument("unknown check type \"" + spec.type + "\"");
}

}  // namespace beacon::health
