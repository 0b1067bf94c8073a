#include <array>
#include <cstddef>
#include <stdexcept>
#include <string>

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

namespace {

using ProbeMaker = std::unique_ptr<Probe> (*)(const boost::asio::any_io_executor&,
                                              const config::CheckSpec&);

struct ProbeRow {
  config::CheckType type;
  ProbeMaker make;
};

// One row per config::CheckType, in enumerator order (checked below).
constexpr std::array<ProbeRow, config::kCheckTypeCount> kProbes = {{
    {config::CheckType::HaproxyHttp, &make_haproxy_http_probe},
    {config::CheckType::HaproxySocket, &make_haproxy_socket_probe},
    {config::CheckType::HaproxyProcess, &make_haproxy_process_probe},
    {config::CheckType::Interface, &make_interface_probe},
    {config::CheckType::File, &make_file_probe},
    {config::CheckType::Exec, &make_exec_probe},
}};

constexpr bool probes_in_enum_order() {
  for (std::size_t i = 0; i < kProbes.size(); ++i) {
    if (static_cast<std::size_t>(kProbes[i].type) != i || kProbes[i].make == nullptr) return false;
  }
  return true;
}
static_assert(probes_in_enum_order(), "kProbes row i must be the maker of CheckType i");

}  // namespace

std::unique_ptr<Probe> make_probe(const boost::asio::any_io_executor& io,
                                  const config::CheckSpec& spec) {
  const auto i = static_cast<std::size_t>(spec.type);
  if (i >= kProbes.size()) {
    throw std::invalid_argument("unknown check type \"" +
                                std::string(config::type_name(spec.type)) + "\"");
  }
  return kProbes[i].make(io, spec);
}

}  // namespace beacon::health
