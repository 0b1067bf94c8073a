// IPv6 link-local scoping: an fe80::/10 address means nothing without the
// interface it lives on, so the scope travels with the address (as scope_id)
// or beside it (as an interface name). Pure; any thread.
#pragma once

#include <boost/asio/ip/address.hpp>
#include <string>

namespace beacon::util {

// True for IPv6 link-local (fe80::/10) addresses.
bool is_link_local(const boost::asio::ip::address& a);

// `a` without its IPv6 scope id (other addresses unchanged).
boost::asio::ip::address without_scope(const boost::asio::ip::address& a);

// `a` with scope id `ifindex` when it is link-local and has none yet; an
// ifindex of 0 (unknown) leaves `a` unchanged.
boost::asio::ip::address with_scope(const boost::asio::ip::address& a, unsigned ifindex);

// "fe80::1%eth0" for a link-local address on `interface`, "fe80::1%3" when only
// the scope id is known, the plain address otherwise.
std::string address_text(const boost::asio::ip::address& a, const std::string& interface);

}  // namespace beacon::util
