// Validation of listen addresses ("ADDR:PORT", "[V6ADDR]:PORT").
#include <boost/asio/ip/address.hpp>
#include <charconv>
#include <string>

#include "beacon/config/config.hpp"

namespace beacon::config {

std::string listen_address_error(std::string_view text) {
  static const std::string kForm =
      "expected ADDRESS:PORT, e.g. \"127.0.0.1:9788\" or \"[::1]:9788\" (\"\" disables)";
  const auto colon = text.rfind(':');
  if (text.empty() || colon == std::string_view::npos) return "missing port: " + kForm;
  std::string_view host = text.substr(0, colon);
  const std::string_view port = text.substr(colon + 1);
  const bool bracketed = host.size() >= 2 && host.front() == '[' && host.back() == ']';
  if (bracketed) host = host.substr(1, host.size() - 2);
  if (host.empty()) return "missing address: " + kForm;
  boost::system::error_code ec;
  const auto addr = boost::asio::ip::make_address(std::string(host), ec);
  if (ec) return "'" + std::string(host) + "' is not an IP address: " + kForm;
  if (addr.is_v6() && !bracketed) return "an IPv6 address needs brackets: " + kForm;
  if (addr.is_v4() && bracketed) return "only an IPv6 address takes brackets: " + kForm;
  unsigned value = 0;
  const auto [end, err] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || err != std::errc() || end != port.data() + port.size() || value < 1 ||
      value > 65535) {
    return "port '" + std::string(port) + "' is not within 1..65535";
  }
  return {};
}

}  // namespace beacon::config
