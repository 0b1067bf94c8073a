// [[accept]] rule match, per-rule cap and creation rate (see accept_policy.hpp).
#include "beacon/engine/accept_policy.hpp"

#include <algorithm>
#include <chrono>

namespace beacon::engine {

using core::wire::DropReason;

AcceptPolicy::AcceptPolicy(const std::vector<config::AcceptSpec>& rules,
                           std::vector<unsigned> ifindex, std::uint32_t per_second,
                           core::TimePoint now)
    : rules_(rules),
      ifindex_(std::move(ifindex)),
      count_(rules.size(), 0),
      rate_(per_second),
      burst_(std::max<double>(per_second, 1.0)),
      tokens_(burst_),
      tokens_at_(now) {
  ifindex_.resize(rules.size(), 0);
}

AcceptPolicy::Verdict AcceptPolicy::check(const boost::asio::ip::address& src, bool multihop,
                                          unsigned ifindex, int ttl, core::TimePoint now) {
  // An IPv4-mapped IPv6 source is an IPv4 peer (as in the session table and
  // AcceptSpec::contains): it is matched against the IPv4 rules.
  const int found = match(src, multihop, ifindex);
  if (found < 0) return {-1, DropReason::NoSessionForPeer};
  const auto rule = static_cast<std::size_t>(found);
  const auto& a = rules_[rule];
  if (a.multihop && ttl < a.min_ttl) return {-1, DropReason::BadTtl};
  if (count_[rule] >= a.max_sessions) return {-1, DropReason::PassiveLimit};
  if (now > tokens_at_) {
    tokens_ =
        std::min(burst_, tokens_ + std::chrono::duration<double>(now - tokens_at_).count() * rate_);
    tokens_at_ = now;
  }
  if (tokens_ < 1.0) return {-1, DropReason::PassiveLimit};
  return {static_cast<int>(rule), DropReason::None};
}

int AcceptPolicy::match(const boost::asio::ip::address& src, bool multihop,
                        unsigned ifindex) const {
  const bool v4 = src.is_v4() || src.to_v6().is_v4_mapped();
  for (std::size_t i = 0; i < rules_.size(); ++i) {
    const auto& a = rules_[i];
    if (a.multihop != multihop || a.prefix.is_v4() != v4) continue;
    if (!a.contains(src)) continue;
    if (ifindex_[i] != 0 && ifindex_[i] != ifindex) continue;
    return static_cast<int>(i);
  }
  return -1;
}

void AcceptPolicy::carry_bucket(const AcceptPolicy& old, core::TimePoint now) {
  double t = old.tokens_;
  if (now > old.tokens_at_) {
    t = std::min(old.burst_,
                 t + std::chrono::duration<double>(now - old.tokens_at_).count() * old.rate_);
  }
  tokens_ = std::min(burst_, t);
  tokens_at_ = std::max(now, old.tokens_at_);
}

void AcceptPolicy::adopt(int rule) {
  ++count_.at(static_cast<std::size_t>(rule));
}

void AcceptPolicy::created(int rule) {
  tokens_ = std::max(tokens_ - 1.0, 0.0);
  ++count_.at(static_cast<std::size_t>(rule));
}

void AcceptPolicy::removed(int rule) {
  auto& c = count_.at(static_cast<std::size_t>(rule));
  if (c > 0) --c;
}

}  // namespace beacon::engine
