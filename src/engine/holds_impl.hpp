// Hold rules of the engine (bfdctl set-state, health policy, shutdown).
// Private to src/engine; engine loop only; pure (no I/O).
//
// Each HoldSource keeps its own rules at three levels: one "all" rule, rules
// per group and rules per peer. For one source the most specific rule that
// matches a session wins (peer > group > all). Setting a rule at a level
// clears the more specific rules of that source it covers, so `down --all`
// really holds everything. The effective hold of a session is the strongest
// over the sources (AdminDown > Down > None), with that rule's diag and
// reason; on a tie the lower HoldSource wins. Rules by cause combine first:
// maintenance with a failing verdict from another source is resolved as
// HoldCause::MaintenanceFailing (see effective()).
#pragma once

#include <array>
#include <boost/asio/ip/address.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "beacon/core/session.hpp"
#include "beacon/engine/engine.hpp"
#include "beacon/util/address_text.hpp"

namespace beacon::engine::detail {

// The engine's fail-safe hold source (issue 3 item 4) has a slot of its own.
inline constexpr HoldSource kFailsafeSource = HoldSource::Failsafe;
inline constexpr std::size_t kHoldSourceSlots = static_cast<std::size_t>(HoldSource::Count);

// A peer selector: address without scope, plus the scope text ("veth0") if any.
struct PeerMatch {
  boost::asio::ip::address addr;
  std::string scope;
};

// What a rule is matched against.
struct HoldTarget {
  boost::asio::ip::address peer;  // without scope
  std::string interface;          // "" if unbound
  unsigned ifindex = 0;
  std::string group;
};

struct EffectiveHold {
  core::Hold hold = core::Hold::None;
  std::uint8_t diag = 0;
  HoldSource source = HoldSource::Admin;
  std::string reason;
  friend bool operator==(const EffectiveHold&, const EffectiveHold&) = default;
};

inline int hold_strength(core::Hold h) {
  switch (h) {
    case core::Hold::AdminDown:
      return 2;
    case core::Hold::Down:
      return 1;
    case core::Hold::None:
      break;
  }
  return 0;
}

// Parses "198.18.0.1", "fd00::1" or "fe80::1%veth0". Returns nullopt and
// sets `error` on bad text.
inline std::optional<PeerMatch> parse_peer_selector(std::string_view text, std::string& error) {
  PeerMatch m;
  std::string_view addr = text;
  if (auto pct = text.find('%'); pct != std::string_view::npos) {
    addr = text.substr(0, pct);
    m.scope = std::string(text.substr(pct + 1));
    if (m.scope.empty()) {
      error = "invalid peer address \"" + std::string(text) + "\"";
      return std::nullopt;
    }
  }
  boost::system::error_code ec;
  m.addr = boost::asio::ip::make_address(std::string(addr), ec);
  if (ec || (!m.scope.empty() && !util::is_link_local(m.addr))) {
    error = "invalid peer address \"" + std::string(text) + "\"";
    return std::nullopt;
  }
  return m;
}

inline bool peer_matches(const PeerMatch& m, const HoldTarget& t) {
  if (m.addr != t.peer) return false;
  if (m.scope.empty()) return true;
  return m.scope == t.interface || (t.ifindex != 0 && m.scope == std::to_string(t.ifindex));
}

class HoldRules {
 public:
  struct Rule {
    Rule() = default;
    Rule(core::Hold h, std::uint8_t d, std::string r = {})
        : hold(h), diag(d), reason(std::move(r)) {}
    // A rule by cause: each session it matches sends its own signal.
    // `hold` is only a placeholder (Down) so the rule counts as a hold.
    Rule(HoldCause c, std::string r) : hold(core::Hold::Down), reason(std::move(r)), cause(c) {}
    core::Hold hold = core::Hold::None;
    std::uint8_t diag = 0;
    std::string reason;  // free text shown per session ("" if none given)
    HoldCause cause = HoldCause::Fixed;

    // What this rule holds a session with `signals` at.
    ResolvedHold resolve(const SessionSignals& signals) const {
      if (cause == HoldCause::Fixed) return {hold, diag};
      return signal_for(signals, cause);
    }
  };

  // Sets (or, with Hold::None at the "all" level, clears) a rule.
  // `peer_in_group(m, g)` tells whether a peer rule `m` covers sessions of
  // group `g` (so a group rule clears it).
  void set_all(HoldSource s, Rule r) {
    auto& rs = rules_[index(s)];
    rs.groups.clear();
    rs.peers.clear();
    if (r.hold == core::Hold::None) {
      rs.all.reset();
    } else {
      rs.all = r;
    }
  }

  // Returns the peer rules it cleared: sessions they matched outside `group`
  // may change too.
  template <class PeerInGroup>
  std::vector<PeerMatch> set_group(HoldSource s, const std::string& group, Rule r,
                                   PeerInGroup&& peer_in_group) {
    auto& rs = rules_[index(s)];
    std::vector<PeerMatch> cleared;
    std::erase_if(rs.peers, [&](const auto& p) {
      if (!peer_in_group(p.first, group)) return false;
      cleared.push_back(p.first);
      return true;
    });
    // An explicit None only matters when a broader rule exists.
    if (r.hold == core::Hold::None && !rs.all) {
      rs.groups.erase(group);
    } else {
      rs.groups[group] = r;
    }
    return cleared;
  }

  void set_peer(HoldSource s, const PeerMatch& m, Rule r) {
    auto& rs = rules_[index(s)];
    std::erase_if(rs.peers, [&](const auto& p) {
      return p.first.addr == m.addr && p.first.scope == m.scope;
    });
    rs.peers.emplace_back(m, r);
  }

  // `signals` resolve the rules given by cause (HoldCause) for this session.
  //
  // Maintenance from one source (operator maintenance) and a failing health
  // verdict from another combine like a check in maintenance while another
  // fails (HoldCause::MaintenanceFailing): maintenance wins, but a session
  // whose unhealthy signal is Down is held Down, never the weaker AdminDown
  // that RFC 5882-strict routers ignore. Strength alone (AdminDown > Down)
  // would let maintenance with AdminDown keep a broken box's route there.
  EffectiveHold effective(const HoldTarget& t, const SessionSignals& signals = {}) const {
    std::array<std::optional<Rule>, kHoldSourceSlots> found;
    bool maintenance = false, failing = false;
    for (std::size_t i = 0; i < rules_.size(); ++i) {
      found[i] = lookup(rules_[i], t);
      if (!found[i]) continue;
      maintenance = maintenance || found[i]->cause == HoldCause::Maintenance ||
                    found[i]->cause == HoldCause::MaintenanceFailing;
      failing = failing || found[i]->cause == HoldCause::Unhealthy ||
                found[i]->cause == HoldCause::MaintenanceFailing;
    }
    const bool combine = maintenance && failing;
    EffectiveHold best;
    for (std::size_t i = 0; i < rules_.size(); ++i) {
      auto& r = found[i];
      if (!r) continue;
      if (combine) {
        if (r->cause == HoldCause::Unhealthy) continue;  // maintenance covers it
        if (r->cause == HoldCause::Maintenance) r->cause = HoldCause::MaintenanceFailing;
      }
      const ResolvedHold h = r->resolve(signals);
      if (hold_strength(h.hold) > hold_strength(best.hold)) {
        best = EffectiveHold{h.hold, h.diag, static_cast<HoldSource>(i), r->reason};
      }
    }
    return best;
  }

  // Whether source `s` has a rule for `group` (set_group with a hold, or an
  // explicit None under an "all" rule).
  bool has_group_rule(HoldSource s, const std::string& group) const {
    return rules_[index(s)].groups.count(group) != 0;
  }

  // Drops every rule of one source.
  void clear(HoldSource s) { rules_[index(s)] = SourceRules{}; }

  bool empty() const {
    for (const auto& rs : rules_) {
      if (rs.all || !rs.groups.empty() || !rs.peers.empty()) return false;
    }
    return true;
  }

 private:
  struct SourceRules {
    std::optional<Rule> all;
    std::map<std::string, Rule> groups;
    std::vector<std::pair<PeerMatch, Rule>> peers;
  };

  static std::size_t index(HoldSource s) { return static_cast<std::size_t>(s); }

  static std::optional<Rule> lookup(const SourceRules& rs, const HoldTarget& t) {
    // Most specific first; among peer rules a scoped one beats an unscoped one.
    const Rule* found = nullptr;
    bool found_scoped = false;
    for (const auto& [m, r] : rs.peers) {
      if (!peer_matches(m, t)) continue;
      if (found == nullptr || (!found_scoped && !m.scope.empty())) {
        found = &r;
        found_scoped = !m.scope.empty();
      }
    }
    if (found != nullptr) return *found;
    if (auto it = rs.groups.find(t.group); it != rs.groups.end()) return it->second;
    return rs.all;
  }

  std::array<SourceRules, kHoldSourceSlots> rules_;
};

}  // namespace beacon::engine::detail
