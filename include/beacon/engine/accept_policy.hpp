// The [[accept]] policy: which YD-0 packets with no matching session may
// create a passive session (RFC 5880 §6.1 passive role; §6.8.6 step 9 left
// no session), and how many and how fast.
//
// Pure (no I/O, time passed in). Per packet: the first rule of the packet's
// kind (single hop / multihop) and address family whose prefix contains the
// source and whose interface (if any) is the ingress one matches; a multihop
// rule also needs TTL >= its min_ttl (MH-05); the rule's session count must
// be below max_sessions; and a token bucket (passive_create_per_second,
// burst the same, at least 1) must hold a token, so a flood of YD 0 packets
// from many sources cannot create sessions faster than that. check() decides
// without consuming; created() takes the token and counts the session, so a
// packet the new session then drops (PKT-11) costs nothing.
#pragma once

#include <boost/asio/ip/address.hpp>
#include <cstdint>
#include <vector>

#include "beacon/config/config.hpp"
#include "beacon/core/time.hpp"
#include "beacon/core/wire.hpp"

namespace beacon::engine {

class AcceptPolicy {
 public:
  // `ifindex[i]` is rule i's interface index (0: any interface).
  AcceptPolicy(const std::vector<config::AcceptSpec>& rules, std::vector<unsigned> ifindex,
               std::uint32_t per_second, core::TimePoint now);

  struct Verdict {
    int rule = -1;  // index into the rules; -1 when dropped
    core::wire::DropReason drop = core::wire::DropReason::None;
  };
  Verdict check(const boost::asio::ip::address& src, bool multihop, unsigned ifindex, int ttl,
                core::TimePoint now);
  void created(int rule);  // consumes a token, counts a session of `rule`
  // Reload: the rule an existing session of this kind, source and interface
  // falls under now (-1: none), ignoring TTL, cap and rate; adopt() counts
  // it without taking a token (a reload never refuses a running session).
  int match(const boost::asio::ip::address& src, bool multihop, unsigned ifindex) const;
  void adopt(int rule);
  void removed(int rule);  // a session of `rule` is gone

  std::uint32_t count(int rule) const { return count_.at(static_cast<std::size_t>(rule)); }
  unsigned rule_ifindex(int rule) const { return ifindex_.at(static_cast<std::size_t>(rule)); }
  double tokens() const { return tokens_; }
  // Reload: takes over the creation budget of the policy this one replaces
  // (refilled up to `now` at the old rate, capped at this burst), so a
  // reload never refills the bucket and cannot be used to get round
  // passive_create_per_second; from `now` on it refills at this rate.
  void carry_bucket(const AcceptPolicy& old, core::TimePoint now);

 private:
  std::vector<config::AcceptSpec> rules_;
  std::vector<unsigned> ifindex_;
  std::vector<std::uint32_t> count_;
  double rate_;
  double burst_;
  double tokens_;
  core::TimePoint tokens_at_;
};

}  // namespace beacon::engine
