// Engine core: applying a reloaded configuration (EngineCore::reload).
//
// Rules (config/diff.hpp defines what "the same session" is):
//  - An unchanged session is not touched: same slot, discriminator, source
//    port, socket and transmit schedule; nothing is sent for it.
//  - Changed timers go through Session::set_params, which runs a Poll
//    sequence while Up (RFC 5880 §6.8.3) and queues a change that arrives
//    during a running Poll until that Poll completes.
//  - A group change moves the session (indexes and holds of the new group).
//  - Added sessions are created as open() creates configured ones, behind
//    the holds of their group; a group that becomes health-managed gets the
//    start-up hold (Down until its first verdict), exactly as at start.
//  - Removed sessions (and dynamic ones no accept rule covers any more)
//    signal the removal signal at once (SM-21) and stay in the tables, shown
//    as removing, until the peer acknowledges (remote state Down/AdminDown)
//    or one peer detection time passes, at most kRemovalCap; then they are
//    deleted. One that is not Up is deleted at once after its signal.
//  - Everything is validated before the first change: a refused reload
//    leaves the engine exactly as it was.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "beacon/util/duration_text.hpp"
#include "core_impl.hpp"

namespace beacon::engine {

namespace {

using core::Duration;
using core::TimePoint;
using detail::is_down;

constexpr Duration kRemovalCap{1'000'000};
constexpr const char* kStartupReason = "waiting for first health verdict";

bool no_peer_in_group(const detail::PeerMatch&, const std::string&) {
  return false;
}

std::string us_text(Duration d) {
  return util::duration_ms_text(d);
}

// "desired_min_tx 100ms -> 200ms, detect_mult 3 -> 5": only what changed.
std::string params_change(const core::SessionParams& a, const core::SessionParams& b) {
  std::vector<std::string> parts;
  if (a.desired_min_tx != b.desired_min_tx) {
    parts.push_back("desired_min_tx " + us_text(a.desired_min_tx) + " -> " +
                    us_text(b.desired_min_tx));
  }
  if (a.required_min_rx != b.required_min_rx) {
    parts.push_back("required_min_rx " + us_text(a.required_min_rx) + " -> " +
                    us_text(b.required_min_rx));
  }
  if (a.detect_mult != b.detect_mult) {
    parts.push_back(fmt::format("detect_mult {} -> {}", a.detect_mult, b.detect_mult));
  }
  if (a.passive != b.passive) parts.push_back(b.passive ? "now passive" : "now active");
  return fmt::format("{}", fmt::join(parts, ", "));
}

// "keyed-sha1, signing key id 2 of 3 keys" / "none": never a secret.
std::string auth_text(const core::auth::KeyRing* k) {
  if (k == nullptr) return "none";
  return fmt::format("{}, signing key id {} of {} key{}", core::auth::config_name(k->type()),
                     k->signing().id, k->size(), k->size() == 1 ? "" : "s");
}

}  // namespace

bool EngineCore::Impl::removal_done(const SessionSlot& s, TimePoint now) const {
  return now >= s.removing_until || is_down(s.session->remote_state());
}

void EngineCore::Impl::finish_removal(std::uint32_t id) {
  SessionSlot& s = *slots[id];
  log->info("peer {} group {}: session deleted (removed by reload; peer {})", s.peer_text, s.group,
            core::wire::state_name(s.session->remote_state()));
  const bool dyn = s.dynamic;
  delete_slot(id);
  if (dyn) ++stats.passive_removed;
}

void EngineCore::Impl::start_removal(std::uint32_t id, std::string_view why, TimePoint now) {
  SessionSlot& s = *slots[id];
  const core::Session& ss = *s.session;
  if (!s.dynamic) {
    if (auto it = configured.find(s.cfg_key); it != configured.end() && it->second == id) {
      configured.erase(it);
    }
  }
  // As at shutdown: the peer notices silence by itself after its Detect Mult
  // x max(its Required Min RX, our Desired Min TX) (§6.8.4); waiting longer
  // gains nothing.
  const Duration peer_detect =
      std::max(ss.remote_min_rx(), ss.effective_desired_min_tx()) *
      static_cast<std::int64_t>(std::max<std::uint8_t>(ss.remote_detect_mult(), 1));
  const bool was_up = ss.state() == core::wire::State::Up;
  s.removing = true;
  s.removing_until = now + std::min(peer_detect, kRemovalCap);
  log->info("peer {} group {}: {}; signalling {}{}", s.peer_text, s.group, why,
            core::hold_name(opts.removal_signal),
            was_up ? " until the peer acknowledges" : ", deleted now");
  apply_hold(s, now);  // sends the signal at once (SM-21)
  if (!was_up) return finish_removal(id);
  rearm_slot(s);
}

void EngineCore::Impl::move_group(SessionSlot& s, const std::string& group) {
  if (s.group == group) return;
  unindex_slot(s);
  s.group = group;
  index_slot(s);
}

// New accept rules replace the old ones at once. Every dynamic session is
// matched against the new rules as a new packet from it would be: the rule
// it falls under now owns it (its group and timers apply); none: removed.
void EngineCore::Impl::replace_accepts(ReloadResult& r,
                                       const std::vector<config::AcceptSpec>& before,
                                       TimePoint now) {
  std::vector<unsigned> ifindex;
  for (const auto& a : opts.accepts) {
    ifindex.push_back(a.interface.empty() ? 0 : transport.interface_index(a.interface));
  }
  AcceptPolicy next(opts.accepts, std::move(ifindex), opts.passive_create_per_second, now);
  if (accept) next.carry_bucket(*accept, now);
  accept.emplace(std::move(next));
  for (std::uint32_t id = 0; id < slots.size(); ++id) {
    if (!slots[id] || !slots[id]->dynamic) continue;
    SessionSlot& s = *slots[id];
    if (s.removing) {
      s.accept_index = -1;  // counted by the old rules only
      continue;
    }
    const int rule = accept->match(s.peer, s.multihop, s.ifindex);
    if (rule < 0) {
      ++r.dynamic_removed;
      r.messages.push_back("session " + s.peer_text +
                           ": dynamic, no accept rule covers it: removed");
      s.accept_index = -1;
      start_removal(id, "no accept rule covers this passive session any more", now);
      continue;
    }
    ++r.dynamic_kept;
    accept->adopt(rule);
    const auto& a = opts.accepts[static_cast<std::size_t>(rule)];
    const bool had_rule =
        s.accept_index >= 0 && static_cast<std::size_t>(s.accept_index) < before.size();
    const bool new_params =
        !had_rule ||
        !config::same_params(before[static_cast<std::size_t>(s.accept_index)].params, a.params);
    s.accept_index = rule;
    if (s.multihop) s.min_ttl = a.min_ttl;
    if (s.group != a.group) {
      r.messages.push_back("session " + s.peer_text + ": dynamic, group " + s.group + " -> " +
                           a.group);
      move_group(s, a.group);
      apply_hold(s, now);
    }
    if (new_params) {
      s.reload_poll = true;
      carry_out(s, s.session->set_params(session_params(a.params, true), now));
    }
    // The rule's keys as loaded now (hitless for the same type).
    const core::auth::KeyRing* had = s.session->auth_keys();
    const bool same_auth =
        had == a.auth.keys.get() || (had != nullptr && a.auth.keys && had->same_as(*a.auth.keys));
    if (!same_auth) {
      r.messages.push_back("session " + s.peer_text + ": dynamic, authentication " +
                           auth_text(had) + " -> " + auth_text(a.auth.keys.get()));
    }
    s.session->set_auth(a.auth.keys);
    rearm_slot(s);
  }
}

// Groups that start being health-managed get the start-up hold (no Up
// before their first verdict); groups that stop being managed lose the
// health and fail-safe rules they had.
void EngineCore::Impl::update_managed(const std::vector<ManagedGroup>& before, TimePoint now) {
  auto was = [&](const std::string& name) {
    return std::any_of(before.begin(), before.end(),
                       [&](const ManagedGroup& g) { return g.name == name; });
  };
  for (const auto& [name, g] : managed) {
    if (was(name)) continue;
    const std::uint8_t diag = detail::default_diag(core::Hold::Down, g->diag);
    holds.set_group(HoldSource::Health, name,
                    detail::HoldRules::Rule{core::Hold::Down, diag, kStartupReason},
                    no_peer_in_group);
    if (failsafe_tripped) {
      holds.set_group(detail::kFailsafeSource, name,
                      detail::HoldRules::Rule{core::Hold::Down, diag, "fail-safe"},
                      no_peer_in_group);
    }
    log->info("group {}: now health-managed; held down diag {} until its first verdict", name,
              diag);
    apply_group_holds(name, now);
  }
  for (const auto& g : before) {
    if (managed.count(g.name) != 0) continue;
    holds.set_group(HoldSource::Health, g.name, detail::HoldRules::Rule{}, no_peer_in_group);
    holds.set_group(detail::kFailsafeSource, g.name, detail::HoldRules::Rule{}, no_peer_in_group);
    log->info("group {}: no longer health-managed", g.name);
    apply_group_holds(g.name, now);
  }
}

// A session leaving (its identity changed but its path did not) or a
// passive session on the path of a configured session being added makes way
// at once: the configured session owns the path.
void EngineCore::Impl::make_way(const config::SessionSpec& spec, ReloadResult& r) {
  PathKey key;
  key.multihop = spec.multihop;
  key.peer = detail::without_scope(spec.peer);
  if (spec.multihop) {
    key.local = spec.local ? detail::without_scope(*spec.local) : boost::asio::ip::address();
  } else {
    key.ifindex = configured_ifindex(spec);
  }
  if (!table.has_path(key)) return;
  const auto other = table.by_path(key);
  if (!other || !slots[*other] || !(slots[*other]->removing || slots[*other]->dynamic)) return;
  SessionSlot& s = *slots[*other];
  log->info("peer {} group {}: {} session makes way for the reloaded configured one", s.peer_text,
            s.group, s.dynamic ? "passive" : "removed");
  const bool dyn = s.dynamic;
  if (dyn && !s.removing) ++r.dynamic_removed;
  delete_slot(*other);
  if (dyn) ++stats.passive_removed;
}

ReloadResult EngineCore::Impl::reload(EngineOptions next) {
  ReloadResult r;
  const TimePoint now = clock.now();
  if (shutting_down) {
    r.errors.push_back("the engine is shutting down");
    return r;
  }
  // Settings that need a restart keep their running values.
  next.timer_slot = opts.timer_slot;
  next.tx_delay = opts.tx_delay;
  next.failsafe_timeout = opts.failsafe_timeout;

  const config::SessionDiff d = config::diff_sessions(opts.sessions, next.sessions);
  // ---- validate everything before the first change
  for (std::size_t j : d.added) {
    try {
      (void)configured_ifindex(next.sessions[j]);
    } catch (const StartupError& e) {
      r.errors.emplace_back(e.what());
    }
  }
  for (const auto& a : next.accepts) {
    if (!a.interface.empty() && transport.interface_index(a.interface) == 0) {
      r.errors.push_back(fmt::format("accept {}/{}: interface \"{}\" does not exist",
                                     a.prefix.to_string(), a.prefix_len, a.interface));
    }
  }
  if (!r.errors.empty()) return r;
  r.applied = true;

  // ---- removals first: their paths may be reused by additions. They
  // signal the new configuration's shutdown_signal.
  opts.removal_signal = next.removal_signal;
  for (std::size_t i : d.removed) {
    auto it = configured.find(config::session_key(opts.sessions[i]));
    if (it == configured.end()) continue;
    SessionSlot& s = *slots[it->second];
    r.messages.push_back("session " + s.peer_text + ": removed");
    ++r.removed;
    start_removal(it->second, "removed from the configuration", now);
  }
  for (auto& p : slots) {
    if (p) p->reload_poll = false;
  }

  const std::vector<config::SessionSpec> old_sessions = std::move(opts.sessions);
  const std::vector<ManagedGroup> old_managed = opts.managed;
  const std::vector<config::AcceptSpec> old_accepts = opts.accepts;
  const bool accepts_changed = !config::same_accepts(old_accepts, next.accepts) ||
                               opts.passive_create_per_second != next.passive_create_per_second;
  opts = std::move(next);
  rebuild_groups();
  mh_min_ttl = opts.multihop_min_ttl;
  for (const auto& s : opts.sessions) {
    if (s.multihop) mh_min_ttl = std::min(mh_min_ttl, s.min_ttl);
  }
  for (const auto& a : opts.accepts) {
    if (a.multihop) mh_min_ttl = std::min(mh_min_ttl, a.min_ttl);
  }
  update_managed(old_managed, now);

  // ---- sessions kept
  r.unchanged = d.unchanged.size();
  for (const auto& c : d.changed) {
    auto it = configured.find(config::session_key(opts.sessions[c.new_index]));
    if (it == configured.end()) continue;
    SessionSlot& s = *slots[it->second];
    const config::SessionSpec& spec = opts.sessions[c.new_index];
    if (c.group) {
      r.messages.push_back("session " + s.peer_text + ": group " + s.group + " -> " + spec.group);
      ++r.moved;
      move_group(s, spec.group);
      apply_hold(s, now);
    }
    if (c.min_ttl && s.multihop) s.min_ttl = spec.min_ttl;
    if (c.auth) {
      // Swapped in place (config/diff.hpp): same type, the sequence numbers
      // carry on and the session stays Up through a key rotation.
      r.messages.push_back("session " + s.peer_text + ": authentication " +
                           auth_text(s.session->auth_keys()) + " -> " +
                           auth_text(spec.auth.keys.get()));
      s.session->set_auth(spec.auth.keys);
    }
    if (c.params) {
      ++r.params_changed;
      if (c.timers) ++r.timers_changed;
      r.messages.push_back(
          "session " + s.peer_text + ": " +
          params_change(old_sessions[c.old_index].params, spec.params) +
          (s.session->state() == core::wire::State::Up && c.timers ? " (Poll sequence)" : ""));
      s.passive = spec.passive;
      s.reload_poll = c.timers;
      carry_out(s, s.session->set_params(session_params(spec.params, spec.passive), now));
    }
    rearm_slot(s);
  }

  if (accepts_changed) {
    r.accepts_replaced = true;
    replace_accepts(r, old_accepts, now);
  }

  // Signals follow the new [[group]] tables and [[session]] overrides. Only a
  // session whose signals differ is re-held (which changes the wire only if a
  // rule by cause holds it now); every other one is left alone.
  auto resignal = [&](SessionSlot& s, const config::SessionSpec* spec) {
    const SessionSignals sig = signals_for(s.group, spec);
    if (sig == s.signals) return;
    s.signals = sig;
    r.messages.push_back("session " + s.peer_text + ": signals unhealthy " +
                         std::string(core::hold_name(sig.unhealthy)) + ", maintenance " +
                         std::string(core::hold_name(sig.maintenance)));
    apply_hold(s, now);
  };
  for (const auto& spec : opts.sessions) {
    auto it = configured.find(config::session_key(spec));
    if (it != configured.end() && !slots[it->second]->removing) resignal(*slots[it->second], &spec);
  }
  for (auto& sp : slots) {
    if (sp && sp->session && sp->dynamic && !sp->removing) resignal(*sp, nullptr);
  }

  // ---- additions
  for (std::size_t j : d.added) {
    const config::SessionSpec& spec = opts.sessions[j];
    try {
      make_way(spec, r);
      create_configured(spec, now);
      ++r.added;
      r.messages.push_back("session " + detail::address_text(spec.peer, spec.interface) +
                           ": added (group " + spec.group + ")");
    } catch (const StartupError& e) {
      r.errors.emplace_back(std::string(e.what()) + " (not added)");
    }
  }
  log->info(
      "engine: reload applied: {} added, {} removed, {} parameters changed ({} timers), {} "
      "moved, {} unchanged; accept rules {}; {} errors",
      r.added, r.removed, r.params_changed, r.timers_changed, r.moved, r.unchanged,
      r.accepts_replaced ? "replaced" : "unchanged", r.errors.size());
  return r;
}

ReloadResult EngineCore::reload(EngineOptions next) {
  try {
    return impl_->reload(std::move(next));
  } catch (const std::exception& e) {
    // Only allocation can fail after validation; say so rather than throw
    // into the engine loop.
    ReloadResult r;
    r.errors.push_back(std::string("reload failed: ") + e.what());
    return r;
  }
}

ReloadProgress EngineCore::reload_progress() const {
  ReloadProgress p;
  for (const auto& s : impl_->slots) {
    if (!s) continue;
    if (s->removing) ++p.removing;
    if (s->reload_poll && (s->session->poll_active() || s->session->poll_queued())) ++p.polls;
  }
  return p;
}

}  // namespace beacon::engine
