// SessionTable: demultiplexing by discriminator and transport keys, and the
// discriminator / source-port allocators (RFC 5880 §6.3, RFC 5881 §3-4,
// RFC 5883 §4).
#include "beacon/engine/demux.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

namespace beacon::engine {
namespace {

namespace ip = boost::asio::ip;
using Slot = SessionTable::Slot;

ip::address addr(const std::string& s) {
  return ip::make_address(s);
}

PathKey single_hop(const std::string& peer, unsigned ifindex) {
  return PathKey{.multihop = false, .peer = addr(peer), .local = {}, .ifindex = ifindex};
}

PathKey multihop(const std::string& local, const std::string& peer, unsigned ifindex = 0) {
  return PathKey{.multihop = true, .peer = addr(peer), .local = addr(local), .ifindex = ifindex};
}

// ---- Discriminators --------------------------------------------------------

// DIS-01: 10k sessions -> all unique, nonzero, not sequential.
TEST(DemuxTest, Dis01DiscriminatorsAreUniqueNonzeroAndRandom) {
  SessionTable t(1);
  std::vector<std::uint32_t> ds;
  for (int i = 0; i < 10'000; ++i) {
    const auto d = t.allocate_discriminator();
    ASSERT_TRUE(d.has_value());
    ASSERT_NE(*d, 0u);
    ds.push_back(*d);
  }
  EXPECT_EQ(std::set<std::uint32_t>(ds.begin(), ds.end()).size(), ds.size());
  int consecutive = 0, increasing = 0;
  for (std::size_t i = 1; i < ds.size(); ++i) {
    if (ds[i] == ds[i - 1] + 1 || ds[i - 1] == ds[i] + 1) ++consecutive;
    if (ds[i] > ds[i - 1]) ++increasing;
  }
  EXPECT_EQ(consecutive, 0);
  EXPECT_GT(increasing, 4'000);  // about half, as for random values
  EXPECT_LT(increasing, 6'000);
  // Spread over the whole 32-bit space.
  EXPECT_GT(*std::max_element(ds.begin(), ds.end()), 0xF0000000u);
  EXPECT_LT(*std::min_element(ds.begin(), ds.end()), 0x10000000u);
}

TEST(DemuxTest, Dis01DiscriminatorsDependOnTheSeedOnly) {
  SessionTable a(42), b(42), c(43);
  for (int i = 0; i < 10; ++i) {
    const auto da = a.allocate_discriminator();
    EXPECT_EQ(da, b.allocate_discriminator());
    EXPECT_NE(da, c.allocate_discriminator());
  }
}

// DIS-01: unique over all sessions, including ones inserted with a value not
// obtained from this allocator.
TEST(DemuxTest, Dis01AllocationSkipsDiscriminatorsInUse) {
  SessionTable probe(9);
  const std::uint32_t first = *probe.allocate_discriminator();
  SessionTable t(9);  // same seed: would hand out `first` next
  t.insert(0, first, single_hop("198.18.0.2", 1));
  EXPECT_NE(t.allocate_discriminator(), first);
}

TEST(DemuxTest, ReleasingUnknownDiscriminatorIsANoOp) {
  SessionTable t(3);
  const auto d = t.allocate_discriminator();
  t.release_discriminator(*d + 1);
  t.release_discriminator(0);
  t.release_discriminator(*d);
  t.release_discriminator(*d);
  EXPECT_EQ(t.size(), 0u);
}

// DIS-02: a nonzero Your Discriminator alone selects the session.
TEST(DemuxTest, Dis02LookupByDiscriminatorIgnoresTransport) {
  SessionTable t(1);
  t.insert(7, 0x11223344, single_hop("198.18.0.2", 3));
  t.insert(8, 0x55667788, multihop("198.18.1.1", "198.18.2.2"));
  EXPECT_EQ(t.size(), 2u);
  EXPECT_EQ(t.by_discriminator(0x11223344), 7u);
  EXPECT_EQ(t.by_discriminator(0x55667788), 8u);
  EXPECT_EQ(t.by_discriminator(0x11223345), std::nullopt);
  EXPECT_EQ(t.by_discriminator(0), std::nullopt);  // 0 means "look up by path"
}

TEST(DemuxTest, InsertWithZeroDiscriminatorIsIgnored) {
  SessionTable t(1);
  t.insert(7, 0, single_hop("198.18.0.2", 3));
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(t.by_discriminator(0), std::nullopt);
  EXPECT_EQ(t.by_path(single_hop("198.18.0.2", 3)), std::nullopt);
}

// MH-10: a single-hop session's discriminator arriving on the multihop port
// (and vice versa) does not match.
TEST(DemuxTest, Mh10DiscriminatorLookupChecksSessionKind) {
  SessionTable t(1);
  t.insert(1, 100, single_hop("198.18.0.2", 3));
  t.insert(2, 200, multihop("198.18.1.1", "198.18.2.2"));
  EXPECT_EQ(t.by_discriminator(100, false), 1u);
  EXPECT_EQ(t.by_discriminator(100, true), std::nullopt);
  EXPECT_EQ(t.by_discriminator(200, true), 2u);
  EXPECT_EQ(t.by_discriminator(200, false), std::nullopt);
  EXPECT_EQ(t.by_discriminator(0, false), std::nullopt);
}

// ---- Transport keys (Your Discriminator 0) ---------------------------------

// DIS-04 / SH-10: one peer address on two interfaces -> two sessions, each
// packet reaching the one on its ingress interface.
TEST(DemuxTest, Dis04Sh10SamePeerOnTwoInterfacesIsTwoSessions) {
  SessionTable t(1);
  t.insert(1, 101, single_hop("198.18.0.2", 3));
  t.insert(2, 102, single_hop("198.18.0.2", 4));
  EXPECT_EQ(t.by_path(single_hop("198.18.0.2", 3)), 1u);
  EXPECT_EQ(t.by_path(single_hop("198.18.0.2", 4)), 2u);
  EXPECT_EQ(t.by_path(single_hop("198.18.0.2", 5)), std::nullopt);
  EXPECT_EQ(t.by_path(single_hop("198.18.0.3", 3)), std::nullopt);
  // Unknown ingress interface does not pick one of the bound sessions.
  EXPECT_EQ(t.by_path(single_hop("198.18.0.2", 0)), std::nullopt);
}

// SH-15: two interfaces with the same fe80 peer -> two sessions; the key
// ignores the address's scope id (the ifindex carries it).
TEST(DemuxTest, Sh15LinkLocalPeerOnTwoInterfaces) {
  SessionTable t(1);
  t.insert(1, 101, single_hop("fe80::1%3", 3));
  t.insert(2, 102, single_hop("fe80::1", 4));
  EXPECT_EQ(t.by_path(single_hop("fe80::1", 3)), 1u);
  EXPECT_EQ(t.by_path(single_hop("fe80::1%3", 3)), 1u);
  EXPECT_EQ(t.by_path(single_hop("fe80::1%4", 4)), 2u);
  EXPECT_EQ(t.by_path(single_hop("fe80::1%99", 4)), 2u);  // scope id is not the key
  EXPECT_EQ(t.by_path(single_hop("fe80::1", 5)), std::nullopt);
  EXPECT_EQ(t.by_path(single_hop("fe80::2", 3)), std::nullopt);
}

TEST(DemuxTest, UnboundSessionMatchesAnyInterfaceButBoundOneWins) {
  SessionTable t(1);
  t.insert(1, 101, single_hop("2001:db8::2", 0));
  EXPECT_EQ(t.by_path(single_hop("2001:db8::2", 7)), 1u);
  EXPECT_EQ(t.by_path(single_hop("2001:db8::2", 0)), 1u);
  t.insert(2, 102, single_hop("2001:db8::2", 7));
  EXPECT_EQ(t.by_path(single_hop("2001:db8::2", 7)), 2u);  // exact match preferred
  EXPECT_EQ(t.by_path(single_hop("2001:db8::2", 8)), 1u);
  t.erase(102, single_hop("2001:db8::2", 7));
  EXPECT_EQ(t.by_path(single_hop("2001:db8::2", 7)), 1u);
}

// DIS-08: address families are separate keys; a v4-mapped IPv6 source is IPv4.
TEST(DemuxTest, Dis08AddressFamiliesAreDistinctAndV4MappedIsV4) {
  SessionTable t(1);
  t.insert(1, 101, single_hop("198.18.0.2", 3));
  t.insert(2, 102, single_hop("fd00::2", 3));
  EXPECT_EQ(t.by_path(single_hop("::ffff:198.18.0.2", 3)), 1u);
  EXPECT_EQ(t.by_path(single_hop("fd00::2", 3)), 2u);
  EXPECT_EQ(t.by_path(single_hop("::c612:2", 3)), std::nullopt);  // v4-compatible: not v4
}

// Single hop ignores the local address (RFC 5881 §3 keys on peer + interface).
TEST(DemuxTest, SingleHopKeyIgnoresLocalAddress) {
  SessionTable t(1);
  PathKey k = single_hop("198.18.0.2", 3);
  k.local = addr("198.18.0.1");
  t.insert(1, 101, k);
  EXPECT_EQ(t.by_path(single_hop("198.18.0.2", 3)), 1u);
  PathKey q = single_hop("198.18.0.2", 3);
  q.local = addr("198.18.9.9");
  EXPECT_EQ(t.by_path(q), 1u);
}

// MH-02: multihop keys are (local, peer); the ingress interface is ignored.
TEST(DemuxTest, Mh02MultihopKeyIsLocalAndPeer) {
  SessionTable t(1);
  t.insert(1, 101, multihop("198.18.1.1", "198.18.2.2", 3));
  t.insert(2, 102, multihop("198.18.1.9", "198.18.2.2"));  // another endpoint address
  EXPECT_EQ(t.by_path(multihop("198.18.1.1", "198.18.2.2", 0)), 1u);
  EXPECT_EQ(t.by_path(multihop("198.18.1.1", "198.18.2.2", 42)), 1u);
  EXPECT_EQ(t.by_path(multihop("198.18.1.9", "198.18.2.2", 5)), 2u);
  EXPECT_EQ(t.by_path(multihop("198.18.1.2", "198.18.2.2")), std::nullopt);
  EXPECT_EQ(t.by_path(multihop("198.18.1.1", "198.18.2.3")), std::nullopt);
  // A duplicate address pair is detectable before insertion (config rejects it).
  EXPECT_TRUE(t.has_path(multihop("198.18.1.1", "198.18.2.2", 9)));
  EXPECT_FALSE(t.has_path(multihop("198.18.1.3", "198.18.2.2")));
}

// MH-10: a multihop key never matches a single-hop session and vice versa,
// including the unbound (ifindex 0) fallback.
TEST(DemuxTest, Mh10SingleHopAndMultihopKeysNeverCross) {
  SessionTable t(1);
  t.insert(1, 101, single_hop("198.18.2.2", 0));
  EXPECT_EQ(t.by_path(multihop("198.18.1.1", "198.18.2.2")), std::nullopt);
  EXPECT_EQ(t.by_path(multihop("0.0.0.0", "198.18.2.2")), std::nullopt);
  EXPECT_EQ(t.by_path(multihop("198.18.1.1", "198.18.2.2", 3)), std::nullopt);

  SessionTable u(1);
  u.insert(2, 102, multihop("198.18.1.1", "198.18.2.2"));
  EXPECT_EQ(u.by_path(single_hop("198.18.2.2", 0)), std::nullopt);
  EXPECT_EQ(u.by_path(single_hop("198.18.2.2", 3)), std::nullopt);
  PathKey k = single_hop("198.18.2.2", 3);
  k.local = addr("198.18.1.1");
  EXPECT_EQ(u.by_path(k), std::nullopt);
}

TEST(DemuxTest, EraseRemovesBothIndexes) {
  SessionTable t(1);
  t.insert(1, 101, single_hop("198.18.0.2", 3));
  t.insert(2, 102, multihop("198.18.1.1", "198.18.2.2"));
  t.erase(101, single_hop("198.18.0.2", 3));
  EXPECT_EQ(t.by_discriminator(101), std::nullopt);
  EXPECT_EQ(t.by_path(single_hop("198.18.0.2", 3)), std::nullopt);
  EXPECT_EQ(t.by_discriminator(102), 2u);
  EXPECT_EQ(t.size(), 1u);
  t.erase(101, single_hop("198.18.0.2", 3));           // again: no-op
  t.erase(999, multihop("198.18.1.1", "198.18.2.2"));  // unknown discriminator: no-op
  EXPECT_EQ(t.by_path(multihop("198.18.1.1", "198.18.2.2")), 2u);
  t.erase(102, multihop("::ffff:198.18.1.1", "198.18.2.2", 8));  // normalised like lookups
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(t.by_path(multihop("198.18.1.1", "198.18.2.2")), std::nullopt);
}

// Erasing one session never detaches another session's path.
TEST(DemuxTest, EraseLeavesAPathOwnedByAnotherSession) {
  SessionTable t(1);
  t.insert(1, 101, single_hop("198.18.0.2", 3));
  t.insert(2, 102, single_hop("198.18.0.5", 3));
  t.erase(102, single_hop("198.18.0.2", 3));  // wrong key for 102
  EXPECT_EQ(t.by_path(single_hop("198.18.0.2", 3)), 1u);
  EXPECT_EQ(t.by_discriminator(102), std::nullopt);
}

TEST(DemuxTest, PathKeyHashIsConsistentWithEquality) {
  const PathKeyHash h;
  EXPECT_EQ(h(single_hop("fe80::1", 3)), h(single_hop("fe80::1", 3)));
  EXPECT_EQ(h(single_hop("fe80::1%3", 3)), h(single_hop("fe80::1", 3)));  // scope not hashed
  EXPECT_NE(h(single_hop("fe80::1", 3)), h(single_hop("fe80::1", 4)));
  EXPECT_NE(h(single_hop("fe80::1", 3)), h(single_hop("fe80::2", 3)));
  EXPECT_NE(h(single_hop("198.18.0.2", 0)), h(multihop("0.0.0.0", "198.18.0.2")));
  EXPECT_NE(h(multihop("198.18.1.1", "198.18.2.2")), h(multihop("198.18.2.2", "198.18.1.1")));
  EXPECT_NE(h(single_hop("0.0.0.0", 0)), h(single_hop("::", 0)));  // family is hashed
  // Spread: 10k distinct keys give (almost) 10k distinct hashes.
  std::set<std::size_t> seen;
  for (unsigned i = 0; i < 10'000; ++i) {
    seen.insert(h(single_hop(ip::make_address_v4(0xC6120000u + i).to_string(), 1 + i % 4)));
  }
  EXPECT_GT(seen.size(), 9'990u);
}

TEST(DemuxTest, NormalizeProducesTheTableKey) {
  const PathKey sh = normalize(PathKey{false, addr("fe80::1%5"), addr("fe80::9"), 5});
  EXPECT_EQ(sh, single_hop("fe80::1", 5));
  EXPECT_EQ(sh.peer.to_v6().scope_id(), 0u);
  const PathKey mh = normalize(PathKey{true, addr("::ffff:198.18.0.2"), addr("198.18.0.1"), 5});
  EXPECT_EQ(mh, multihop("198.18.0.1", "198.18.0.2", 0));
}

// ---- Source ports -----------------------------------------------------------

// SH-02 / SH-04: every port in 49152-65535 once, then exhaustion; a released
// port is reused.
TEST(DemuxTest, Sh02Sh04SourcePortsUniqueInRangeThenExhausted) {
  SessionTable t(1);
  std::set<std::uint16_t> ports;
  for (int i = 0; i < 16'384; ++i) {
    const auto p = t.allocate_source_port();
    ASSERT_TRUE(p.has_value()) << i;
    ASSERT_GE(*p, 49152);
    ports.insert(*p);
  }
  EXPECT_EQ(ports.size(), 16'384u);
  EXPECT_EQ(t.allocate_source_port(), std::nullopt);
  EXPECT_EQ(t.allocate_source_port(), std::nullopt);
  t.release_source_port(50'000);
  EXPECT_EQ(t.allocate_source_port(), 50'000);
  EXPECT_EQ(t.allocate_source_port(), std::nullopt);
  t.release_source_port(65'535);
  t.release_source_port(49'152);
  const auto a = t.allocate_source_port(), b = t.allocate_source_port();
  ASSERT_TRUE(a && b);
  EXPECT_EQ(std::set<std::uint16_t>({*a, *b}), std::set<std::uint16_t>({49'152, 65'535}));
  EXPECT_EQ(t.allocate_source_port(), std::nullopt);
}

// SH-04: a released port is reused as late as possible, not immediately.
TEST(DemuxTest, Sh04ReleasedPortIsNotReusedImmediately) {
  SessionTable t(1);
  const auto first = t.allocate_source_port();
  ASSERT_TRUE(first);
  t.release_source_port(*first);
  for (int i = 0; i < 1000; ++i) EXPECT_NE(t.allocate_source_port(), first);
}

TEST(DemuxTest, ReleasingUnknownPortIsANoOp) {
  SessionTable t(1);
  t.release_source_port(80);
  t.release_source_port(60'000);
  int n = 0;
  while (t.allocate_source_port()) ++n;
  EXPECT_EQ(n, 16'384);
}

}  // namespace
}  // namespace beacon::engine
