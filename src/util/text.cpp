#include <net/if.h>

#include <array>
#include <cstdio>
#include <cstring>

#include "beacon/util/address_text.hpp"
#include "beacon/util/duration_text.hpp"
#include "beacon/util/errno_text.hpp"
#include "beacon/util/ifindex.hpp"

namespace beacon::util {

namespace ip = boost::asio::ip;

std::string errno_text(int err) {
  return std::strerror(err);
}

// ---------------------------------------------------------------- durations

namespace {

// Three decimals, trailing zeros dropped: "1.500" -> "1.5", "2.000" -> "2".
std::string fixed3(double v) {
  std::array<char, 64> buf{};
  std::snprintf(buf.data(), buf.size(), "%.3f", v);
  std::string s(buf.data());
  while (s.back() == '0') s.pop_back();
  if (s.back() == '.') s.pop_back();
  return s;
}

}  // namespace

std::string duration_exact_text(std::chrono::microseconds d) {
  const std::int64_t us = d.count();
  if (us != 0 && us % 1'000'000 == 0) return std::to_string(us / 1'000'000) + "s";
  if (us != 0 && us % 1'000 == 0) return std::to_string(us / 1'000) + "ms";
  return std::to_string(us) + "us";
}

std::string duration_ms_text(std::chrono::microseconds d) {
  if (d.count() % 1000 != 0) return std::to_string(d.count()) + "us";
  return std::to_string(d.count() / 1000) + "ms";
}

std::string duration_short_text(std::chrono::microseconds d) {
  if (d >= std::chrono::seconds(1)) {
    std::array<char, 64> buf{};
    std::snprintf(buf.data(), buf.size(), "%.1fs", std::chrono::duration<double>(d).count());
    return buf.data();
  }
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) + "ms";
}

std::string interval_text(std::int64_t us) {
  if (us <= 0) return "-";
  if (us < 1000) return std::to_string(us) + "us";
  if (us < 1'000'000) {
    if (us % 1000 == 0) return std::to_string(us / 1000) + "ms";
    return fixed3(static_cast<double>(us) / 1000.0) + "ms";
  }
  return fixed3(static_cast<double>(us) / 1e6) + "s";
}

// ---------------------------------------------------------------- addresses

bool is_link_local(const ip::address& a) {
  return a.is_v6() && a.to_v6().is_link_local();
}

ip::address without_scope(const ip::address& a) {
  if (a.is_v6() && a.to_v6().scope_id() != 0) return ip::address_v6(a.to_v6().to_bytes());
  return a;
}

ip::address with_scope(const ip::address& a, unsigned ifindex) {
  if (ifindex == 0 || !is_link_local(a) || a.to_v6().scope_id() != 0) return a;
  auto v6 = a.to_v6();
  v6.scope_id(ifindex);
  return v6;
}

std::string address_text(const ip::address& a, const std::string& interface) {
  auto plain = without_scope(a).to_string();
  if (is_link_local(a)) {
    if (!interface.empty()) return plain + "%" + interface;
    if (a.to_v6().scope_id() != 0) return plain + "%" + std::to_string(a.to_v6().scope_id());
  }
  return plain;
}

// ---------------------------------------------------------------- interfaces

unsigned interface_index(const std::string& name) {
  if (name.empty() || name.size() >= IF_NAMESIZE) return 0;
  return ::if_nametoindex(name.c_str());
}

std::string interface_name(unsigned ifindex) {
  char buf[IF_NAMESIZE] = {};
  if (ifindex == 0 || ::if_indextoname(ifindex, buf) == nullptr) return {};
  return buf;
}

}  // namespace beacon::util
