// Session table and demultiplexing (RFC 5880 §6.3, RFC 5881 §3, RFC 5883 §4).
//
// Pure data structure (engine loop only): finds the session for a received
// packet by Your Discriminator, or, when it is 0, by transport keys:
//   single hop: (address family, peer address, ingress ifindex)   DIS-04/SH-10
//   multihop:   (local address, peer address)                      MH-02
// Also allocates random, unique, nonzero local discriminators (DIS-01) and
// unique UDP source ports in 49152-65535 (SH-02..04).
//
// Keys are normalised on every insert/erase/lookup (normalize()): an IPv6
// scope id is cleared (the ifindex carries it, SH-15), a v4-mapped IPv6
// address becomes IPv4, single-hop keys drop `local`, multihop keys drop
// `ifindex`. Nothing here throws except std::bad_alloc.
#pragma once

#include <boost/asio/ip/address.hpp>
#include <cstdint>
#include <optional>
#include <random>
#include <unordered_map>
#include <unordered_set>

namespace beacon::engine {

struct PathKey {
  bool multihop = false;
  boost::asio::ip::address peer;   // v6 link-local without scope (ifindex carries it)
  boost::asio::ip::address local;  // multihop only; unspecified for single hop
  unsigned ifindex = 0;            // single hop; 0 = session not bound to an interface

  friend bool operator==(const PathKey&, const PathKey&) = default;
};

// The canonical form used as the table key (see the file comment).
PathKey normalize(PathKey key);

// Hashes multihop, the address families and bytes (not the scope id) and the
// ifindex; consistent with operator==.
struct PathKeyHash {
  std::size_t operator()(const PathKey& k) const;
};

class SessionTable {
 public:
  using Slot = std::uint32_t;  // engine's index of the session

  static constexpr std::uint16_t kFirstSourcePort = 49152;  // RFC 5881 §4
  static constexpr std::uint16_t kLastSourcePort = 65535;

  explicit SessionTable(std::uint64_t seed);

  // Allocations (DIS-01, SH-02..04). Return nullopt when exhausted.
  // Discriminators: random, nonzero, unique among allocated and inserted ones.
  std::optional<std::uint32_t> allocate_discriminator();
  void release_discriminator(std::uint32_t d);  // unknown: no-op
  // Ports: unique; handed out round-robin so a released port is reused as
  // late as possible.
  std::optional<std::uint16_t> allocate_source_port();
  void release_source_port(std::uint16_t port);  // unknown: no-op

  // Adds a session. Discriminator 0 is invalid (DIS-01): the call is a no-op.
  // A key or discriminator already present is replaced (the caller checks
  // has_path() first to reject duplicates, MH-02).
  void insert(Slot slot, std::uint32_t local_discr, const PathKey& key);
  // Removes the session with `local_discr`, and the path entry for `key` when
  // it belongs to that same session. Unknown discriminator: no-op.
  void erase(std::uint32_t local_discr, const PathKey& key);

  // DIS-02: a nonzero Your Discriminator alone selects the session. 0 never matches.
  std::optional<Slot> by_discriminator(std::uint32_t your_discr) const;
  // MH-10: as above, but only a session of the given kind matches (a
  // single-hop session's discriminator arriving on the multihop port is dropped).
  std::optional<Slot> by_discriminator(std::uint32_t your_discr, bool multihop) const;
  // Exact key first; for single hop, a session not bound to an interface
  // (ifindex 0) also matches any ingress ifindex.
  std::optional<Slot> by_path(const PathKey& key) const;
  // Whether exactly this (normalised) key is taken.
  bool has_path(const PathKey& key) const;

  std::size_t size() const { return by_discr_.size(); }

 private:
  struct Record {
    Slot slot;
    bool multihop;
  };

  std::mt19937_64 rng_;
  std::unordered_map<std::uint32_t, Record> by_discr_;
  std::unordered_map<PathKey, Slot, PathKeyHash> by_path_;
  std::unordered_set<std::uint32_t> discr_allocated_;
  std::unordered_set<std::uint16_t> ports_in_use_;
  std::uint16_t next_port_ = kFirstSourcePort;
};

}  // namespace beacon::engine
