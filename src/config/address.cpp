// Addresses, prefixes and names as written in the config file, and
// AcceptSpec::contains (called by the engine when a packet with Your
// Discriminator 0 arrives from an unknown peer).
#include <net/if.h>

#include <array>
#include <charconv>

#include "beacon/util/address_text.hpp"
#include "beacon/util/ifindex.hpp"
#include "config_impl.hpp"

namespace beacon::config::detail {

namespace ip = boost::asio::ip;

bool is_link_local(const ip::address& a) {
  return util::is_link_local(a);
}

namespace {

// Plain address (no scope, no prefix) that may serve as a BFD endpoint.
std::optional<ip::address> parse_plain(std::string_view text, std::string& why) {
  boost::system::error_code ec;
  const ip::address a = ip::make_address(std::string(text), ec);
  if (ec) {
    why = "\"" + std::string(text) + "\" is not an IPv4 or IPv6 address";
    return std::nullopt;
  }
  if (a.is_v6() && a.to_v6().is_v4_mapped()) {
    why = "IPv4-mapped IPv6 address; write the IPv4 address \"" +
          ip::make_address_v4(ip::v4_mapped, a.to_v6()).to_string() + "\"";
    return std::nullopt;
  }
  return a;
}

}  // namespace

std::optional<ParsedAddress> parse_address(std::string_view text, std::string& why) {
  ParsedAddress out;
  std::string_view addr_text = text;
  if (const auto pct = text.find('%'); pct != std::string_view::npos) {
    out.scope = std::string(text.substr(pct + 1));
    addr_text = text.substr(0, pct);
  }
  auto a = parse_plain(addr_text, why);
  if (!a) return std::nullopt;
  if (a->is_unspecified() || a->is_multicast() ||
      (a->is_v4() && a->to_v4() == ip::address_v4::broadcast())) {
    why = "\"" + std::string(addr_text) + "\" is not a unicast address";
    return std::nullopt;
  }
  if (text.find('%') != std::string_view::npos) {
    if (!is_link_local(*a)) {
      why =
          "a scope (%interface) is only valid on a link-local IPv6 address; use the "
          "interface key instead";
      return std::nullopt;
    }
    if (!valid_interface_name(out.scope)) {
      why = "\"" + out.scope + "\" is not a valid interface name";
      return std::nullopt;
    }
  }
  out.address = *a;
  return out;
}

std::optional<ParsedPrefix> parse_prefix(std::string_view text, std::string& why) {
  const auto slash = text.find('/');
  if (slash == std::string_view::npos) {
    why = "expected ADDRESS/LENGTH, e.g. \"198.18.0.0/15\" or \"fd00::/64\"";
    return std::nullopt;
  }
  if (text.find('%') != std::string_view::npos) {
    why = "a prefix cannot carry a scope; use the interface key";
    return std::nullopt;
  }
  auto a = parse_plain(text.substr(0, slash), why);
  if (!a) return std::nullopt;
  const std::string_view len_text = text.substr(slash + 1);
  const unsigned max_len = a->is_v4() ? 32 : 128;
  unsigned len = 0;
  const auto [end, ec] = std::from_chars(len_text.data(), len_text.data() + len_text.size(), len);
  if (len_text.empty() || ec != std::errc{} || end != len_text.data() + len_text.size() ||
      len > max_len) {
    why = "prefix length \"" + std::string(len_text) + "\" must be 0.." + std::to_string(max_len);
    return std::nullopt;
  }
  // Host bits must be zero: compare with the address masked to `len` bits.
  ip::address masked;
  if (a->is_v4()) {
    const std::uint32_t mask = len == 0 ? 0 : ~std::uint32_t{0} << (32 - len);
    masked = ip::address_v4(a->to_v4().to_uint() & mask);
  } else {
    auto bytes = a->to_v6().to_bytes();
    for (unsigned i = 0; i < bytes.size(); ++i) {
      const unsigned bits = len > i * 8 ? std::min(8u, len - i * 8) : 0;
      bytes[i] &= static_cast<unsigned char>(0xff00u >> bits);
    }
    masked = ip::address_v6(bytes);
  }
  if (masked != *a) {
    why = "host bits are set; did you mean \"" + masked.to_string() + "/" + std::to_string(len) +
          "\"?";
    return std::nullopt;
  }
  return ParsedPrefix{*a, len};
}

bool valid_interface_name(std::string_view name) {
  if (name.empty() || name.size() >= IFNAMSIZ || name == "." || name == "..") return false;
  for (char c : name) {
    if (c == '/' || c == ':' || c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
        c == '\f' || c == '\0') {
      return false;
    }
  }
  return true;
}

bool valid_group_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

unsigned interface_index(const std::string& name) {
  return util::interface_index(name);
}

}  // namespace beacon::config::detail

namespace beacon::config {

namespace ip = boost::asio::ip;

bool AcceptSpec::contains(const ip::address& a) const {
  // A v4 peer seen through a dual-stack socket arrives v4-mapped.
  if (prefix.is_v4() && a.is_v6() && a.to_v6().is_v4_mapped()) {
    return contains(ip::make_address_v4(ip::v4_mapped, a.to_v6()));
  }
  if (prefix.is_v4() != a.is_v4()) return false;
  if (prefix.is_v4()) {
    if (prefix_len > 32) return false;
    if (prefix_len == 0) return true;
    const std::uint32_t mask = ~std::uint32_t{0} << (32 - prefix_len);
    return (prefix.to_v4().to_uint() & mask) == (a.to_v4().to_uint() & mask);
  }
  if (prefix_len > 128) return false;
  // Scope ids are ignored: the interface key restricts link-local rules.
  const auto p = prefix.to_v6().to_bytes();
  const auto b = a.to_v6().to_bytes();
  unsigned bits = prefix_len;
  for (std::size_t i = 0; i < p.size() && bits > 0; ++i) {
    const unsigned n = std::min(8u, bits);
    const auto mask = static_cast<unsigned char>(0xff00u >> n);
    if ((p[i] & mask) != (b[i] & mask)) return false;
    bits -= n;
  }
  return true;
}

}  // namespace beacon::config
