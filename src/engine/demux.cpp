// Session table: discriminator and transport-key demultiplexing, plus the
// discriminator and source-port allocators (see demux.hpp). Engine loop only.
#include "beacon/engine/demux.hpp"

#include <array>
#include <cstddef>

namespace beacon::engine {
namespace {

namespace ip = boost::asio::ip;

// IPv6 link-local addresses are only meaningful with a scope, which the
// key's ifindex carries (SH-15); a v4-mapped address is really IPv4.
ip::address canonical(const ip::address& a) {
  if (!a.is_v6()) return a;
  ip::address_v6 v6 = a.to_v6();
  if (v6.is_v4_mapped()) return ip::make_address_v4(ip::v4_mapped, v6);
  v6.scope_id(0);
  return v6;
}

// FNV-1a, 64 bit.
class Fnv {
 public:
  void add(unsigned char b) {
    h_ ^= b;
    h_ *= 0x100000001b3ULL;
  }
  void add(const ip::address& a) {
    if (a.is_v4()) {
      add(4);
      for (unsigned char b : a.to_v4().to_bytes()) add(b);
    } else {
      add(6);
      for (unsigned char b : a.to_v6().to_bytes()) add(b);
    }
  }
  void add_u32(std::uint32_t v) {
    for (int i = 0; i < 4; ++i) add(static_cast<unsigned char>(v >> (8 * i)));
  }
  std::uint64_t value() const { return h_; }

 private:
  std::uint64_t h_ = 0xcbf29ce484222325ULL;
};

}  // namespace

PathKey normalize(PathKey key) {
  key.peer = canonical(key.peer);
  if (key.multihop) {
    key.local = canonical(key.local);
    key.ifindex = 0;  // RFC 5883 §4.1: multihop is not bound to an interface
  } else {
    key.local = ip::address();  // RFC 5881 §3: (peer, interface) only
  }
  return key;
}

std::size_t PathKeyHash::operator()(const PathKey& k) const {
  Fnv h;
  h.add(k.multihop ? 1 : 0);
  h.add(k.peer);
  h.add(k.local);
  h.add_u32(k.ifindex);
  return static_cast<std::size_t>(h.value());
}

SessionTable::SessionTable(std::uint64_t seed) : rng_(seed) {}

std::optional<std::uint32_t> SessionTable::allocate_discriminator() {
  // DIS-01: nonzero, unique, random. The space is 2^32 - 1 and the table holds
  // at most a few hundred thousand sessions, so a collision is rare; bound the
  // retries anyway.
  std::uniform_int_distribution<std::uint32_t> dist(1, UINT32_MAX);
  for (int attempt = 0; attempt < 1024; ++attempt) {
    const std::uint32_t d = dist(rng_);
    if (discr_allocated_.contains(d) || by_discr_.contains(d)) continue;
    discr_allocated_.insert(d);
    return d;
  }
  return std::nullopt;
}

void SessionTable::release_discriminator(std::uint32_t d) {
  discr_allocated_.erase(d);
}

std::optional<std::uint16_t> SessionTable::allocate_source_port() {
  // SH-02..04: unique in 49152-65535. Round-robin from the last allocation so
  // a released port is reused as late as possible (stray packets of an old
  // session do not hit a new one).
  constexpr unsigned kRange = unsigned{kLastSourcePort} - kFirstSourcePort + 1;
  if (ports_in_use_.size() >= kRange) return std::nullopt;
  for (unsigned i = 0; i < kRange; ++i) {
    const std::uint16_t port = next_port_;
    next_port_ = port == kLastSourcePort ? kFirstSourcePort : static_cast<std::uint16_t>(port + 1);
    if (ports_in_use_.insert(port).second) return port;
  }
  return std::nullopt;
}

void SessionTable::release_source_port(std::uint16_t port) {
  ports_in_use_.erase(port);
}

void SessionTable::insert(Slot slot, std::uint32_t local_discr, const PathKey& key) {
  if (local_discr == 0) return;  // DIS-01: never a valid local discriminator
  const PathKey k = normalize(key);
  by_discr_.insert_or_assign(local_discr, Record{slot, k.multihop});
  by_path_.insert_or_assign(k, slot);
}

void SessionTable::erase(std::uint32_t local_discr, const PathKey& key) {
  const auto it = by_discr_.find(local_discr);
  if (it == by_discr_.end()) return;
  const Slot slot = it->second.slot;
  by_discr_.erase(it);
  const auto p = by_path_.find(normalize(key));
  if (p != by_path_.end() && p->second == slot) by_path_.erase(p);
}

std::optional<SessionTable::Slot> SessionTable::by_discriminator(std::uint32_t your_discr) const {
  if (your_discr == 0) return std::nullopt;
  const auto it = by_discr_.find(your_discr);
  if (it == by_discr_.end()) return std::nullopt;
  return it->second.slot;
}

std::optional<SessionTable::Slot> SessionTable::by_discriminator(std::uint32_t your_discr,
                                                                 bool multihop) const {
  if (your_discr == 0) return std::nullopt;
  const auto it = by_discr_.find(your_discr);
  if (it == by_discr_.end() || it->second.multihop != multihop) return std::nullopt;
  return it->second.slot;
}

std::optional<SessionTable::Slot> SessionTable::by_path(const PathKey& key) const {
  PathKey k = normalize(key);
  if (const auto it = by_path_.find(k); it != by_path_.end()) return it->second;
  // RFC 5881 §3: a session not bound to an interface accepts any ingress
  // interface, but a bound session on the ingress interface wins (above).
  if (k.multihop || k.ifindex == 0) return std::nullopt;
  k.ifindex = 0;
  if (const auto it = by_path_.find(k); it != by_path_.end()) return it->second;
  return std::nullopt;
}

bool SessionTable::has_path(const PathKey& key) const {
  return by_path_.contains(normalize(key));
}

}  // namespace beacon::engine
