// Engine core: holds (bfdctl, health verdicts, fail-safe, shutdown), the
// start-up hold of health-managed groups, the fail-safe and the read-only
// views (snapshots, stats).
//
// Start-up order and fail-safe: a group driven by health checks is held Down
// by the Health source from open() until the health manager's first verdict
// replaces that rule. Independently, a fail-safe rule holds those groups Down
// while the heartbeat from the ops loop is stale; the strongest source wins,
// so a stalled ops loop can never leave a group Up on its last (possibly
// healthy) verdict.
//
// Holds are applied through indexes (sessions by group, by peer address): a
// verdict for one group touches that group's sessions, not every session.
#include <fmt/format.h>

#include "beacon/util/duration_text.hpp"
#include "core_impl.hpp"

namespace beacon::engine {

namespace {

using core::Duration;
using core::TimePoint;

constexpr Duration kFailsafeMinPeriod{1'000};
constexpr std::uint8_t kFailsafeDiag = static_cast<std::uint8_t>(core::wire::Diag::PathDown);
constexpr const char* kStartupReason = "waiting for first health verdict";

// "1.2s" from one second on, "250ms" below.
std::string duration_text(Duration d) {
  return util::duration_short_text(d);
}

bool no_peer_in_group(const detail::PeerMatch&, const std::string&) {
  return false;
}

}  // namespace

std::string_view hold_source_name(HoldSource s) {
  switch (s) {
    case HoldSource::Admin:
      return "admin";
    case HoldSource::Health:
      return "health";
    case HoldSource::Shutdown:
      return "shutdown";
    case HoldSource::Failsafe:
      return "failsafe";
    case HoldSource::Maintenance:
      return "maintenance";
    case HoldSource::Count:
      break;
  }
  return "unknown";
}

std::string_view hold_cause_name(HoldCause c) {
  switch (c) {
    case HoldCause::Fixed:
      return "fixed";
    case HoldCause::Unhealthy:
      return "unhealthy";
    case HoldCause::Maintenance:
      return "maintenance";
    case HoldCause::MaintenanceFailing:
      return "maintenance+failing";
  }
  return "unknown";
}

// ================================================================ holds

detail::HoldTarget EngineCore::Impl::target(const SessionSlot& s) const {
  return detail::HoldTarget{s.peer, s.interface, s.ifindex, s.group};
}

SessionSignals EngineCore::Impl::signals_for(const std::string& group,
                                             const config::SessionSpec* spec) const {
  SessionSignals sig;
  // Every [[group]] table gives its signals (operator maintenance applies to
  // groups without checks too); only one with checks is health-managed.
  const auto m = managed.find(group);
  const ManagedGroup* g = m != managed.end() ? m->second : nullptr;
  if (auto it = group_signals.find(group); it != group_signals.end()) g = it->second;
  if (g != nullptr) {
    sig.unhealthy = g->unhealthy_signal;
    sig.maintenance = g->maintenance_signal;
    sig.down_diag = detail::default_diag(core::Hold::Down, g->diag);
  }
  sig.managed = m != managed.end();
  if (spec != nullptr) {
    if (spec->unhealthy_signal) sig.unhealthy = *spec->unhealthy_signal;
    if (spec->maintenance_signal) sig.maintenance = *spec->maintenance_signal;
    sig.overridden = spec->unhealthy_signal.has_value() || spec->maintenance_signal.has_value();
  }
  return sig;
}

void EngineCore::Impl::apply_hold(SessionSlot& s, TimePoint now) {
  detail::EffectiveHold eh = holds.effective(target(s), s.signals);
  // A session leaving the configuration signals the removal signal whatever
  // else holds it (only a stronger AdminDown rule keeps AdminDown).
  if (s.removing && detail::hold_strength(opts.removal_signal) >= detail::hold_strength(eh.hold)) {
    eh = detail::EffectiveHold{opts.removal_signal, detail::default_diag(opts.removal_signal, 0),
                               HoldSource::Shutdown, "removed from the configuration"};
  }
  // Source and reason may change without any change on the wire (e.g. the
  // first health verdict replacing the start-up hold with the same diag).
  if (s.hold_source != eh.source) ++view_gen;
  s.hold_source = eh.source;
  if (eh.hold == core::Hold::None) {
    if (!s.hold_reason.empty()) ++view_gen;
    s.hold_reason.clear();
  } else if (s.hold_reason != eh.reason) {
    ++view_gen;
    s.hold_reason = std::move(eh.reason);
  }
  if (eh.hold == s.session->hold() && (eh.hold == core::Hold::None || eh.diag == s.hold_diag)) {
    return;
  }
  ++view_gen;  // the hold itself is shown, with or without a state change
  s.hold_diag = eh.diag;
  carry_out(s, s.session->set_hold(eh.hold, eh.diag, now));  // SM-21: sent at once
  rearm_slot(s);
}

template <class Ids>
void EngineCore::Impl::apply_holds(const Ids& ids, TimePoint now) {
  for (const std::uint32_t id : ids) {
    if (id < slots.size() && slots[id]) apply_hold(*slots[id], now);
  }
}

void EngineCore::Impl::apply_all_holds() {
  const TimePoint now = clock.now();
  for (auto& p : slots) {
    if (p) apply_hold(*p, now);
  }
}

void EngineCore::Impl::apply_group_holds(std::string_view group, TimePoint now) {
  if (auto it = by_group.find(group); it != by_group.end()) {
    const std::vector<std::uint32_t> ids = it->second;  // apply_hold never re-indexes
    apply_holds(ids, now);
  }
}

void EngineCore::Impl::apply_peer_holds(const detail::PeerMatch& m, TimePoint now) {
  if (auto it = by_peer.find(m.addr); it != by_peer.end()) {
    const std::vector<std::uint32_t> ids = it->second;
    apply_holds(ids, now);
  }
}

bool EngineCore::Impl::group_known(std::string_view g) const {
  return std::binary_search(known_groups.begin(), known_groups.end(), g) ||
         by_group.find(g) != by_group.end();
}

HoldResult EngineCore::Impl::set_hold(HoldSource source, const Selector& sel, core::Hold hold,
                                      std::uint8_t diag, std::string reason) {
  const std::uint8_t eff_diag = detail::default_diag(hold, diag);
  const detail::HoldRules::Rule rule{hold, eff_diag, hold == core::Hold::None ? "" : reason};
  return set_rule(source, sel, rule, fmt::format("{} diag {}", core::hold_name(hold), eff_diag));
}

HoldResult EngineCore::Impl::set_hold(HoldSource source, const Selector& sel, HoldCause cause,
                                      std::string reason) {
  if (cause == HoldCause::Fixed) {
    HoldResult r;
    r.error = "a hold by cause needs a cause other than fixed";
    return r;
  }
  const detail::HoldRules::Rule rule{cause, std::move(reason)};
  return set_rule(source, sel, rule,
                  fmt::format("{} (each session's own signal)", hold_cause_name(cause)));
}

HoldResult EngineCore::Impl::set_rule(HoldSource source, const Selector& sel,
                                      const detail::HoldRules::Rule& rule,
                                      const std::string& what) {
  HoldResult r;
  if (static_cast<std::size_t>(source) >= static_cast<std::size_t>(HoldSource::Count)) {
    r.error = "invalid hold source";
    return r;
  }
  const TimePoint now = clock.now();
  const core::Hold hold = rule.hold;
  const std::string& reason = rule.reason;
  switch (sel.kind) {
    case Selector::Kind::All:
      r.matched = live;
      holds.set_all(source, rule);
      apply_all_holds();
      break;
    case Selector::Kind::Group: {
      const auto members = by_group.find(sel.value);
      r.matched = members == by_group.end() ? 0 : members->second.size();
      // A group nobody knows is refused whether the rule holds or releases:
      // "up --group typo" must not report success while changing nothing.
      // Releasing a rule this source still keeps for a group gone from the
      // configuration is allowed, so such a rule can always be cleared.
      if (!group_known(sel.value) &&
          (hold != core::Hold::None || !holds.has_group_rule(source, sel.value))) {
        r.error = "no session in group \"" + sel.value + "\"";
        return r;
      }
      const auto cleared = holds.set_group(
          source, sel.value, rule, [&](const detail::PeerMatch& m, const std::string& g) {
            const auto it = by_peer.find(m.addr);
            if (it == by_peer.end()) return false;
            return std::any_of(it->second.begin(), it->second.end(), [&](auto id) {
              const SessionSlot& s = *slots[id];
              return s.group == g && detail::peer_matches(m, target(s));
            });
          });
      apply_group_holds(sel.value, now);
      for (const auto& m : cleared) apply_peer_holds(m, now);
      break;
    }
    case Selector::Kind::Peer: {
      auto m = detail::parse_peer_selector(sel.value, r.error);
      if (!m) return r;
      if (auto it = by_peer.find(m->addr); it != by_peer.end()) {
        for (auto id : it->second)
          r.matched += detail::peer_matches(*m, target(*slots[id])) ? 1 : 0;
      }
      if (r.matched == 0 && hold != core::Hold::None) {
        r.error = "no session with peer " + sel.value;
        return r;
      }
      holds.set_peer(source, *m, rule);
      apply_peer_holds(*m, now);
      break;
    }
  }
  if (source != HoldSource::Shutdown) {
    // "all" has no value: no trailing blank before the colon.
    const std::string scope = sel.kind == Selector::Kind::All     ? std::string("all")
                              : sel.kind == Selector::Kind::Group ? "group " + sel.value
                                                                  : "peer " + sel.value;
    log->info("hold {} {}: {} ({} sessions){}{}", hold_source_name(source), scope, what, r.matched,
              reason.empty() ? "" : ": ", reason);
  }
  return r;
}

void EngineCore::Impl::hold_managed_groups(HoldSource source, core::Hold hold, std::uint8_t diag,
                                           const std::string& reason) {
  const TimePoint now = clock.now();
  for (const auto& [name, g] : managed) {
    holds.set_group(source, name, detail::HoldRules::Rule{hold, diag, reason}, no_peer_in_group);
    apply_group_holds(name, now);
  }
}

// ================================================================ start-up order

void EngineCore::Impl::init_health() {
  // No Up before the first verdict. Sessions created later (configured ones
  // right after this, passive ones at any time) pick the rule up when they
  // are created.
  for (const auto& [name, g] : managed) {
    const std::uint8_t diag = detail::default_diag(core::Hold::Down, g->diag);
    holds.set_group(HoldSource::Health, name,
                    detail::HoldRules::Rule{core::Hold::Down, diag, kStartupReason},
                    no_peer_in_group);
    log->info("group {}: held down diag {} until the first health verdict ({} checks)", name, diag,
              g->checks);
  }
}

// ================================================================ maintenance

void EngineCore::Impl::store_maintenance(const std::vector<MaintenanceScope>& scopes) {
  holds.clear(HoldSource::Maintenance);
  // Rules by cause: each session sends its own maintenance signal
  // (SessionSignals). The all-scope goes first because setting it clears the
  // source's group rules.
  for (const auto& m : scopes) {
    if (m.group.empty()) {
      holds.set_all(HoldSource::Maintenance,
                    detail::HoldRules::Rule(HoldCause::Maintenance, m.reason));
    }
  }
  for (const auto& m : scopes) {
    if (m.group.empty()) continue;
    holds.set_group(HoldSource::Maintenance, m.group,
                    detail::HoldRules::Rule(HoldCause::Maintenance, m.reason), no_peer_in_group);
  }
}

void EngineCore::Impl::init_maintenance() {
  store_maintenance(opts.initial_maintenance);
  for (const auto& m : opts.initial_maintenance) {
    log->info("{}: in maintenance from start-up{}{}",
              m.group.empty() ? std::string("all sessions") : "group " + m.group,
              m.reason.empty() ? "" : ": ", m.reason);
  }
}

HoldResult EngineCore::Impl::set_maintenance(std::vector<MaintenanceScope> scopes) {
  store_maintenance(scopes);
  apply_all_holds();  // rare and operator-driven: every session is re-evaluated
  HoldResult r;
  const bool all = std::any_of(scopes.begin(), scopes.end(),
                               [](const MaintenanceScope& m) { return m.group.empty(); });
  for (const auto& p : slots) {
    if (!p) continue;
    const bool covered =
        all || std::any_of(scopes.begin(), scopes.end(),
                           [&](const MaintenanceScope& m) { return m.group == p->group; });
    r.matched += covered ? 1 : 0;
  }
  log->info("maintenance: {} scope(s), {} session(s) held", scopes.size(), r.matched);
  return r;
}

// ================================================================ fail-safe

void EngineCore::Impl::failsafe_check(std::optional<TimePoint> last_heartbeat) {
  if (shutting_down || failsafe_disarmed || managed.empty()) return;
  const TimePoint now = clock.now();
  TimePoint last = run_at;
  if (last_heartbeat) last = std::max(last, *last_heartbeat);
  const Duration stalled = std::max(now - last, Duration{0});
  const bool stale = stalled > opts.failsafe_timeout;
  if (stale && !failsafe_tripped) {
    failsafe_tripped = true;
    ++stats.failsafe_trips;
    const std::string reason =
        "health verdicts stalled for " + duration_text(stalled) + " (fail-safe)";
    hold_managed_groups(detail::kFailsafeSource, core::Hold::Down, kFailsafeDiag, reason);
    log->warn("engine: fail-safe: no health heartbeat for {} (limit {}); {} group(s) held down",
              duration_text(stalled), duration_text(opts.failsafe_timeout), managed.size());
  } else if (!stale && failsafe_tripped) {
    failsafe_tripped = false;
    hold_managed_groups(detail::kFailsafeSource, core::Hold::None, 0, "");
    log->info("engine: fail-safe released: health heartbeats resumed");
  }
}

// ================================================================ snapshots

SessionSnapshot EngineCore::Impl::snapshot(const SessionSlot& s, TimePoint now) const {
  const core::Session& x = *s.session;
  SessionSnapshot o;
  o.peer = s.peer_text;
  if (s.local_cfg) {
    o.local = detail::without_scope(*s.local_cfg).to_string();
  } else if (s.local_seen) {
    o.local = detail::without_scope(*s.local_seen).to_string();
  }
  o.interface = s.interface;
  o.group = s.group;
  o.multihop = s.multihop;
  o.passive = s.passive;
  o.dynamic = s.dynamic;
  o.removing = s.removing;
  o.source_port = s.source_port;
  o.state = x.state();
  o.remote_state = x.remote_state();
  o.local_diag = x.local_diag();
  o.remote_diag = x.remote_diag();
  o.local_discr = x.local_discr();
  o.remote_discr = x.remote_discr();
  o.hold = x.hold();
  o.hold_source = s.hold_source;
  o.hold_reason = s.hold_reason;
  if (s.signals.managed || s.signals.overridden) {
    o.unhealthy_signal = core::hold_name(s.signals.unhealthy);
    o.maintenance_signal = core::hold_name(s.signals.maintenance);
  }
  o.signal_override = s.signals.overridden;
  if (const core::auth::KeyRing* k = x.auth_keys()) {
    o.auth_type = k->type();
    o.auth_key_id = k->signing().id;
  }
  o.params = x.params();
  o.tx_interval = x.tx_interval();
  o.detection_time = x.detection_time();
  o.remote_min_rx = x.remote_min_rx();
  o.remote_desired_min_tx = x.remote_desired_min_tx();
  o.remote_detect_mult = x.remote_detect_mult();
  o.counters = x.counters();
  o.since_change = std::max(now - x.last_state_change(), Duration{0});
  o.last_change = x.last_state_change();
  return o;
}

// ================================================================ EngineCore

bool EngineCore::failsafe_enabled() const {
  return !impl_->managed.empty();
}

Duration EngineCore::failsafe_period() const {
  return std::max(impl_->opts.failsafe_timeout / 4, kFailsafeMinPeriod);
}

void EngineCore::failsafe_check(std::optional<TimePoint> last_heartbeat) {
  impl_->failsafe_check(last_heartbeat);
}

void EngineCore::disarm_failsafe() {
  impl_->failsafe_disarmed = true;
}

std::vector<SessionSnapshot> EngineCore::sessions(std::size_t from, std::size_t max,
                                                  std::size_t& next) const {
  const TimePoint now = impl_->clock.now();
  max = std::max<std::size_t>(max, 1);  // a chunk always moves forward
  std::vector<SessionSnapshot> out;
  std::size_t i = from;
  for (; i < impl_->slots.size() && out.size() < max; ++i) {
    if (impl_->slots[i]) out.push_back(impl_->snapshot(*impl_->slots[i], now));
  }
  next = i < impl_->slots.size() ? i : static_cast<std::size_t>(-1);
  return out;
}

std::vector<SessionSnapshot> EngineCore::sessions() const {
  std::size_t next = 0;
  auto out = sessions(0, impl_->slots.size(), next);
  return out;
}

EngineStats EngineCore::stats() const {
  EngineStats s = impl_->stats;
  s.sessions = impl_->live;
  return s;
}

}  // namespace beacon::engine
