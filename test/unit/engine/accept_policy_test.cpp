// AcceptPolicy alone (PKT-20 / RFC 5880 §6.8.6 step 9, passive role §6.1):
// which rule a YD-0 packet with no session matches, the per-rule cap and the
// creation token bucket. Pure: time is passed in.
#include "beacon/engine/accept_policy.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace beacon::engine {
namespace {

namespace ip = boost::asio::ip;
using core::Duration;
using core::TimePoint;
using core::wire::DropReason;

const TimePoint kT0 = TimePoint{} + Duration{1'000'000'000};

ip::address addr(const std::string& s) {
  return ip::make_address(s);
}

config::AcceptSpec rule(const std::string& prefix, unsigned len, std::uint32_t max = 64,
                        bool multihop = false, std::uint8_t min_ttl = 255) {
  config::AcceptSpec a;
  a.prefix = addr(prefix);
  a.prefix_len = len;
  a.max_sessions = max;
  a.multihop = multihop;
  a.min_ttl = min_ttl;
  a.params.passive = true;
  return a;
}

// The rule index a single-hop packet from `src` on ifindex 2 gets (-1: none).
int match(AcceptPolicy& p, const std::string& src, unsigned ifindex = 2) {
  return p.check(addr(src), false, ifindex, 255, kT0).rule;
}

// The first rule of the packet's kind and family that contains the source wins.
TEST(AcceptPolicy, FirstMatchingRuleWins) {
  const std::vector<config::AcceptSpec> rules{rule("198.18.0.0", 24), rule("198.18.0.0", 16),
                                              rule("0.0.0.0", 0)};
  AcceptPolicy p(rules, {}, 100, kT0);
  EXPECT_EQ(match(p, "198.18.0.5"), 0);
  EXPECT_EQ(match(p, "198.18.1.5"), 1);
  EXPECT_EQ(match(p, "10.0.0.1"), 2);
  auto v = p.check(addr("198.18.0.5"), false, 2, 255, kT0);
  EXPECT_EQ(v.drop, DropReason::None);

  // A narrower rule after a broader one never matches.
  const std::vector<config::AcceptSpec> shadow{rule("198.18.0.0", 16), rule("198.18.0.0", 24)};
  AcceptPolicy q(shadow, {}, 100, kT0);
  EXPECT_EQ(match(q, "198.18.0.5"), 0);
}

// Address family and kind (single hop / multihop) must match.
TEST(AcceptPolicy, AddressFamilyAndKindMustMatch) {
  const std::vector<config::AcceptSpec> rules{rule("0.0.0.0", 0), rule("::", 0, 64, true, 1)};
  AcceptPolicy p(rules, {}, 100, kT0);
  EXPECT_EQ(p.check(addr("198.18.0.1"), false, 2, 255, kT0).rule, 0);
  EXPECT_EQ(p.check(addr("fd00::1"), true, 0, 255, kT0).rule, 1);
  // v6 source, single hop: the only v6 rule is multihop.
  auto v = p.check(addr("fd00::1"), false, 2, 255, kT0);
  EXPECT_EQ(v.rule, -1);
  EXPECT_EQ(v.drop, DropReason::NoSessionForPeer);
  // v4 source, multihop: the only multihop rule is v6.
  v = p.check(addr("198.18.0.1"), true, 0, 255, kT0);
  EXPECT_EQ(v.rule, -1);
  EXPECT_EQ(v.drop, DropReason::NoSessionForPeer);

  const std::vector<config::AcceptSpec> no_rules;  // AcceptPolicy keeps a reference
  AcceptPolicy none(no_rules, {}, 100, kT0);
  EXPECT_EQ(none.check(addr("198.18.0.1"), false, 2, 255, kT0).drop, DropReason::NoSessionForPeer);
}

// Prefix boundaries: IPv4 /24 and /32, IPv6 /64, and an IPv4-mapped IPv6
// source (a dual-stack socket's view of an IPv4 peer) matching an IPv4 rule.
TEST(AcceptPolicy, PrefixBoundaries) {
  const std::vector<config::AcceptSpec> rules{rule("198.18.0.0", 24), rule("203.0.113.7", 32),
                                              rule("fd00:1:2:3::", 64)};
  AcceptPolicy p(rules, {}, 100, kT0);
  EXPECT_EQ(match(p, "198.18.0.0"), 0);
  EXPECT_EQ(match(p, "198.18.0.255"), 0);
  EXPECT_EQ(match(p, "198.18.1.0"), -1);
  EXPECT_EQ(match(p, "198.17.255.255"), -1);
  EXPECT_EQ(match(p, "203.0.113.7"), 1);
  EXPECT_EQ(match(p, "203.0.113.6"), -1);
  EXPECT_EQ(match(p, "203.0.113.8"), -1);
  EXPECT_EQ(match(p, "fd00:1:2:3::"), 2);
  EXPECT_EQ(match(p, "fd00:1:2:3:ffff:ffff:ffff:ffff"), 2);
  EXPECT_EQ(match(p, "fd00:1:2:4::"), -1);
  EXPECT_EQ(match(p, "fd00:1:2:2:ffff:ffff:ffff:ffff"), -1);
  EXPECT_EQ(match(p, "::ffff:198.18.0.7"), 0);
  EXPECT_EQ(match(p, "::ffff:198.18.1.7"), -1);
  EXPECT_EQ(match(p, "::ffff:203.0.113.7"), 1);
  // Being IPv4, a mapped source is not taken by an IPv6 rule.
  const std::vector<config::AcceptSpec> v6_any{rule("::", 0)};
  AcceptPolicy q(v6_any, {}, 100, kT0);
  EXPECT_EQ(match(q, "::ffff:198.18.0.7"), -1);
  EXPECT_EQ(match(q, "fd00::7"), 0);
}

// A rule with an interface only matches packets that came in on it; the next
// rule may still take the packet.
TEST(AcceptPolicy, InterfaceFilter) {
  const std::vector<config::AcceptSpec> rules{rule("198.18.0.0", 24), rule("198.18.0.0", 16)};
  AcceptPolicy p(rules, {2, 0}, 100, kT0);
  EXPECT_EQ(p.rule_ifindex(0), 2u);
  EXPECT_EQ(p.rule_ifindex(1), 0u);
  EXPECT_EQ(match(p, "198.18.0.5", 2), 0);
  EXPECT_EQ(match(p, "198.18.0.5", 3), 1);
  EXPECT_EQ(match(p, "198.18.0.5", 0), 1);  // ingress unknown: not the interface

  const std::vector<config::AcceptSpec> only{rule("198.18.0.0", 24)};
  AcceptPolicy q(only, {2}, 100, kT0);
  EXPECT_EQ(match(q, "198.18.0.5", 3), -1);
  // Fewer ifindex entries than rules: the rest are "any interface".
  AcceptPolicy r(rules, {}, 100, kT0);
  EXPECT_EQ(r.rule_ifindex(0), 0u);
  EXPECT_EQ(match(r, "198.18.0.5", 7), 0);
}

// MH-05: a multihop rule needs TTL >= its min_ttl; below is BadTtl.
TEST(AcceptPolicy, MultihopMinTtl) {
  const std::vector<config::AcceptSpec> rules{rule("198.18.0.0", 24, 64, true, 250)};
  AcceptPolicy p(rules, {}, 100, kT0);
  auto v = p.check(addr("198.18.0.9"), true, 0, 249, kT0);
  EXPECT_EQ(v.rule, -1);
  EXPECT_EQ(v.drop, DropReason::BadTtl);
  EXPECT_EQ(p.check(addr("198.18.0.9"), true, 0, -1, kT0).drop, DropReason::BadTtl);
  EXPECT_EQ(p.check(addr("198.18.0.9"), true, 0, 250, kT0).rule, 0);
  EXPECT_EQ(p.check(addr("198.18.0.9"), true, 0, 255, kT0).rule, 0);
}

// Per-rule cap through created()/removed(); a full rule drops (PassiveLimit)
// instead of passing the packet on to a later rule.
TEST(AcceptPolicy, MaxSessionsPerRule) {
  const std::vector<config::AcceptSpec> rules{rule("198.18.0.0", 24, 2), rule("0.0.0.0", 0, 5)};
  AcceptPolicy p(rules, {}, 1000, kT0);
  for (int i = 0; i < 2; ++i) {
    auto v = p.check(addr("198.18.0.9"), false, 2, 255, kT0);
    ASSERT_EQ(v.rule, 0);
    p.created(v.rule);
  }
  EXPECT_EQ(p.count(0), 2u);
  auto v = p.check(addr("198.18.0.9"), false, 2, 255, kT0);
  EXPECT_EQ(v.rule, -1);
  EXPECT_EQ(v.drop, DropReason::PassiveLimit);
  EXPECT_EQ(match(p, "10.0.0.1"), 1);  // the other rule has its own count
  p.removed(0);
  EXPECT_EQ(p.count(0), 1u);
  EXPECT_EQ(match(p, "198.18.0.9"), 0);
  // removed() never goes below 0.
  p.removed(1);
  EXPECT_EQ(p.count(1), 0u);
  p.removed(0);
  p.removed(0);
  EXPECT_EQ(p.count(0), 0u);
}

// Token bucket: burst = rate (at least 1), refilled continuously at the rate,
// never above the burst.
TEST(AcceptPolicy, TokenBucketRefillsOverTime) {
  const std::vector<config::AcceptSpec> rules{rule("0.0.0.0", 0, 1'000'000)};
  AcceptPolicy p(rules, {}, 4, kT0);
  EXPECT_EQ(p.tokens(), 4.0);
  auto take = [&](TimePoint at) {
    auto v = p.check(addr("198.18.0.1"), false, 2, 255, at);
    if (v.rule >= 0) p.created(v.rule);
    return v.drop;
  };
  for (int i = 0; i < 4; ++i) EXPECT_EQ(take(kT0), DropReason::None) << i;
  EXPECT_EQ(take(kT0), DropReason::PassiveLimit);
  EXPECT_EQ(p.tokens(), 0.0);
  EXPECT_EQ(take(kT0 + Duration{125'000}), DropReason::PassiveLimit);  // half a token
  EXPECT_EQ(take(kT0 + Duration{250'000}), DropReason::None);          // one token
  EXPECT_EQ(take(kT0 + Duration{250'000}), DropReason::PassiveLimit);
  // A long pause refills up to the burst, not beyond.
  const TimePoint later = kT0 + Duration{60'000'000};
  p.check(addr("198.18.0.1"), false, 2, 255, later);
  EXPECT_EQ(p.tokens(), 4.0);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(take(later), DropReason::None) << i;
  EXPECT_EQ(take(later), DropReason::PassiveLimit);
  // Time going backwards refills nothing.
  EXPECT_EQ(take(kT0), DropReason::PassiveLimit);
}

TEST(AcceptPolicy, BurstIsAtLeastOne) {
  const std::vector<config::AcceptSpec> rules{rule("0.0.0.0", 0, 1'000'000)};
  AcceptPolicy one(rules, {}, 1, kT0);
  EXPECT_EQ(one.tokens(), 1.0);
  EXPECT_EQ(one.check(addr("198.18.0.1"), false, 2, 255, kT0).rule, 0);
  one.created(0);
  EXPECT_EQ(one.check(addr("198.18.0.1"), false, 2, 255, kT0).drop, DropReason::PassiveLimit);
  EXPECT_EQ(one.check(addr("198.18.0.1"), false, 2, 255, kT0 + Duration{1'000'000}).rule, 0);
  // Rate 0 still allows a burst of one.
  AcceptPolicy zero(rules, {}, 0, kT0);
  EXPECT_EQ(zero.tokens(), 1.0);
  EXPECT_EQ(zero.check(addr("198.18.0.1"), false, 2, 255, kT0).rule, 0);
}

// A reload replaces the policy: the new one keeps the old budget (refilled
// up to the reload), so reloading cannot refill the bucket; a lower rate
// caps it at the new burst.
TEST(AcceptPolicy, ReloadKeepsTheBucket) {
  const std::vector<config::AcceptSpec> rules{rule("0.0.0.0", 0, 1'000'000)};
  AcceptPolicy p(rules, {}, 4, kT0);
  for (int i = 0; i < 4; ++i) p.created(0);
  EXPECT_EQ(p.tokens(), 0.0);
  const TimePoint at = kT0 + Duration{250'000};  // one token refilled by now
  AcceptPolicy same(rules, {}, 4, at);
  EXPECT_EQ(same.tokens(), 4.0);  // a fresh policy starts full...
  same.carry_bucket(p, at);
  EXPECT_EQ(same.tokens(), 1.0);  // ...a reloaded one does not
  EXPECT_EQ(same.check(addr("198.18.0.1"), false, 2, 255, at).rule, 0);
  same.created(0);
  EXPECT_EQ(same.check(addr("198.18.0.1"), false, 2, 255, at).drop, DropReason::PassiveLimit);
  EXPECT_EQ(same.check(addr("198.18.0.1"), false, 2, 255, at + Duration{250'000}).rule, 0);
  // A full bucket under a lower rate: capped at the new burst.
  AcceptPolicy full(rules, {}, 4, kT0);
  AcceptPolicy lower(rules, {}, 2, kT0);
  lower.carry_bucket(full, kT0);
  EXPECT_EQ(lower.tokens(), 2.0);
}

// check() decides without consuming: only created() takes a token and counts.
TEST(AcceptPolicy, CheckConsumesNothing) {
  const std::vector<config::AcceptSpec> rules{rule("0.0.0.0", 0, 1)};
  AcceptPolicy p(rules, {}, 1, kT0);
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(p.check(addr("198.18.0.1"), false, 2, 255, kT0).rule, 0);
  }
  EXPECT_EQ(p.tokens(), 1.0);
  EXPECT_EQ(p.count(0), 0u);
  p.created(0);
  EXPECT_EQ(p.tokens(), 0.0);
  EXPECT_EQ(p.count(0), 1u);
  // Drops (cap reached, no rule) consume nothing either: once the cap frees,
  // the refilled token is there.
  const TimePoint later = kT0 + Duration{5'000'000};
  EXPECT_EQ(p.check(addr("198.18.0.1"), false, 2, 255, later).drop, DropReason::PassiveLimit);
  EXPECT_EQ(p.check(addr("10.0.0.1"), true, 0, 255, later).drop, DropReason::NoSessionForPeer);
  p.removed(0);
  EXPECT_EQ(p.check(addr("198.18.0.1"), false, 2, 255, later).rule, 0);
  EXPECT_EQ(p.tokens(), 1.0);
  EXPECT_EQ(p.count(0), 0u);
}

}  // namespace
}  // namespace beacon::engine
