// Session table and demultiplexing (RFC 5880 §6.3, RFC 5881 §3, RFC 5883 §4).
//
// Pure data structure (engine loop only): finds the session for a received
// packet by Your Discriminator, or, when it is 0, by transport keys:
//   single hop: (address family, peer address, ingress ifindex)   DIS-04/SH-10
//   multihop:   (local address, peer address)                      MH-02
// Also allocates random, unique, nonzero local discriminators (DIS-01) and
// unique UDP source ports in 49152-65535 (SH-02..04).
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <unordered_map>
#include <unordered_set>

#include <boost/asio/ip/address.hpp>

namespace beacon::engine {

struct PathKey {
  bool multihop = false;
  boost::asio::ip::address peer;   // v6 link-local without scope (ifindex carries it)
  boost::asio::ip::address local;  // multihop only; unspecified for single hop
  unsigned ifindex = 0;            // single hop; 0 = session not bound to an interface

  friend bool operator==(const PathKey&, const PathKey&) = default;
};

struct PathKeyHash {
  std::size_t operator()(const PathKey& k) const;
};

class SessionTable {
 public:
  using Slot = std::uint32_t;  // engine's index of the session

  explicit SessionTable(std::uint64_t seed);

  // Allocations (DIS-01, SH-02..04). Return nullopt when exhausted.
  std::optional<std::uint32_t> allocate_discriminator();
  void release_discriminator(std::uint32_t d);
  std::optional<std::uint16_t> allocate_source_port();
  void release_source_port(std::uint16_t port);

  void insert(Slot slot, std::uint32_t local_discr, const PathKey& key);
  void erase(std::uint32_t local_discr, const PathKey& key);

  std::optional<Slot> by_discriminator(std::uint32_t your_discr) const;
  // Exact key first; for single hop, a session not bound to an interface
  // (ifindex 0) also matches any ingress ifindex.
  std::optional<Slot> by_path(const PathKey& key) const;

  std::size_t size() const { return by_discr_.size(); }

 private:
  std::mt19937_64 rng_;
  std::unordered_map<std::uint32_t, Slot> by_discr_;
  std::unordered_map<PathKey, Slot, PathKeyHash> by_path_;
  std::unordered_set<std::uint16_t> ports_in_use_;
  std::uint16_t next_port_ = 49152;
};

}  // namespace beacon::engine
