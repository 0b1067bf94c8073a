// The engine core: sessions, their one scheduler, receive and demultiplexing,
// passive sessions and the graceful shutdown (see core.hpp). Holds, the
// fail-safe and snapshots are in core_holds.cpp.
#include <fmt/format.h>

#include <cerrno>
#include <string>

#include "beacon/util/address_text.hpp"
#include "core_impl.hpp"

namespace beacon::engine {

namespace {

namespace asio = boost::asio;
using core::Duration;
using core::TimePoint;
using core::wire::DropReason;
using core::wire::State;
using detail::is_down;

// SM-02: a dynamic session is kept at least one detection time after the last
// packet, and never less than this.
constexpr Duration kDynamicKeepMin{5'000'000};
// Graceful shutdown never takes longer than this (systemd's stop timeout
// must cover it).
constexpr Duration kShutdownCap{1'000'000};
constexpr int kPortAttempts = 64;
constexpr Duration kDropLogInterval{1'000'000};
// Random initial phase: 100 us per configured session, up to the 1 s slow rate.
constexpr std::int64_t kPhasePerSessionUs = 100;

using util::with_scope;

bool is_auth_failure(DropReason r) {
  switch (r) {
    case DropReason::AuthPresentNotConfigured:
    case DropReason::AuthMissing:
    case DropReason::AuthFailed:
    case DropReason::AuthWrongType:
    case DropReason::AuthUnknownKeyId:
    case DropReason::AuthBadSequence:
      return true;
    default:
      return false;
  }
}

}  // namespace

// ================================================================ helpers

EngineOptions EngineOptions::from(const config::Config& cfg) {
  EngineOptions o;
  o.sessions = cfg.sessions;
  o.accepts = cfg.accepts;
  for (const auto& g : cfg.groups) {
    o.declared_groups.push_back(g.name);
    o.group_signals.push_back(
        ManagedGroup{g.name, g.unhealthy_signal, g.maintenance_signal, g.diag, g.checks.size()});
    if (!g.checks.empty()) {
      o.managed.push_back(
          ManagedGroup{g.name, g.unhealthy_signal, g.maintenance_signal, g.diag, g.checks.size()});
    }
  }
  o.multihop_min_ttl = cfg.bfd.multihop_min_ttl;
  o.passive_create_per_second = cfg.bfd.passive_create_per_second;
  o.timer_slot = cfg.engine.timer_slot;
  o.failsafe_timeout = cfg.health.failsafe_timeout;
  o.removal_signal = cfg.daemon.shutdown_signal;
  return o;
}

// ================================================================ start-up

EngineCore::Impl::Impl(EngineOptions o, Transport& t, const core::Clock& c,
                       std::shared_ptr<spdlog::logger> l, std::uint64_t seed)
    : opts(std::move(o)),
      transport(t),
      clock(c),
      log(l ? std::move(l) : spdlog::default_logger()),
      table(seed),
      rng(seed ^ 0x9e3779b97f4a7c15ULL) {}

void EngineCore::Impl::open() {
  const TimePoint now = clock.now();
  mh_min_ttl = opts.multihop_min_ttl;
  for (const auto& s : opts.sessions) {
    if (s.multihop) mh_min_ttl = std::min(mh_min_ttl, s.min_ttl);
  }
  std::vector<unsigned> accept_ifindex;
  for (const auto& a : opts.accepts) {
    if (a.multihop) mh_min_ttl = std::min(mh_min_ttl, a.min_ttl);
    unsigned idx = 0;
    if (!a.interface.empty()) {
      idx = transport.interface_index(a.interface);
      if (idx == 0) {
        throw StartupError("accept " + a.prefix.to_string() + "/" + std::to_string(a.prefix_len) +
                           ": interface \"" + a.interface + "\" does not exist");
      }
    }
    accept_ifindex.push_back(idx);
  }
  accept.emplace(opts.accepts, std::move(accept_ifindex), opts.passive_create_per_second, now);
  rebuild_groups();
  init_health();       // before any session exists: no Up before the first verdict
  init_maintenance();  // likewise: a box in maintenance stays out after a restart
  for (const auto& spec : opts.sessions) create_configured(spec, now);
  log->info("engine: {} configured sessions, {} accept rules", opts.sessions.size(),
            opts.accepts.size());
}

std::uint32_t EngineCore::Impl::new_slot_id() {
  std::uint32_t id;
  if (!free_ids.empty()) {
    id = free_ids.back();
    free_ids.pop_back();
  } else {
    id = static_cast<std::uint32_t>(slots.size());
    slots.emplace_back();
  }
  slots[id] = std::make_unique<SessionSlot>();
  slots[id]->id = id;
  return id;
}

void EngineCore::Impl::index_slot(const SessionSlot& s) {
  ++view_gen;
  by_group[s.group].push_back(s.id);
  by_peer[s.peer].push_back(s.id);
}

void EngineCore::Impl::unindex_slot(const SessionSlot& s) {
  ++view_gen;
  auto drop_id = [&](auto& index, const auto& key) {
    auto it = index.find(key);
    if (it == index.end()) return;
    std::erase(it->second, s.id);
    if (it->second.empty()) index.erase(it);
  };
  drop_id(by_group, s.group);
  drop_id(by_peer, s.peer);
}

// Allocates a source port (SH-02..04) and opens the send path; a port some
// other process holds is skipped.
bool EngineCore::Impl::open_path(SessionSlot& s, PathSpec spec, std::string& error) {
  for (int attempt = 0; attempt < kPortAttempts; ++attempt) {
    auto port = table.allocate_source_port();
    if (!port) {
      error = "no free source port in 49152-65535";
      return false;
    }
    spec.source_port = *port;
    PathOpenError err;
    if (auto path = transport.open_path(spec, err)) {
      s.path = *path;
      s.source_port = *port;
      return true;
    }
    if (err.errnum != EADDRINUSE) {
      table.release_source_port(*port);
      error = err.message;
      return false;
    }
    // Keep the busy port reserved: someone else holds it.
  }
  error = "no usable source port after " + std::to_string(kPortAttempts) + " attempts";
  return false;
}

void EngineCore::Impl::rebuild_groups() {
  known_groups.clear();
  for (const auto& s : opts.sessions) known_groups.push_back(s.group);
  for (const auto& a : opts.accepts) known_groups.push_back(a.group);
  for (const auto& g : opts.declared_groups) known_groups.push_back(g);
  std::sort(known_groups.begin(), known_groups.end());
  known_groups.erase(std::unique(known_groups.begin(), known_groups.end()), known_groups.end());
  managed.clear();
  for (const auto& g : opts.managed) managed[g.name] = &g;
  // Points into opts, which a reload replaces: rebuilt with it.
  group_signals.clear();
  for (const auto& g : opts.group_signals) group_signals[g.name] = &g;
}

unsigned EngineCore::Impl::configured_ifindex(const config::SessionSpec& spec) const {
  const std::string who = "session " + detail::address_text(spec.peer, spec.interface);
  unsigned ifindex = 0;
  if (!spec.interface.empty()) {
    ifindex = transport.interface_index(spec.interface);
    if (ifindex == 0) {
      throw StartupError(who + ": interface \"" + spec.interface + "\" does not exist");
    }
  }
  if (spec.peer.is_unspecified() || spec.peer.is_multicast()) {
    throw StartupError(who + ": not a unicast peer address");
  }
  const bool link_local = spec.peer.is_v6() && spec.peer.to_v6().is_link_local();
  if (link_local && ifindex == 0) {
    ifindex = static_cast<unsigned>(spec.peer.to_v6().scope_id());
    if (ifindex == 0) throw StartupError(who + ": a link-local peer needs an interface");
  }
  if (spec.local && spec.local->is_v4() != spec.peer.is_v4()) {
    throw StartupError(who + ": local address " + spec.local->to_string() +
                       " is not of the peer's address family");
  }
  return ifindex;
}

void EngineCore::Impl::create_configured(const config::SessionSpec& spec, TimePoint now) {
  const std::string who = "session " + detail::address_text(spec.peer, spec.interface);
  const unsigned ifindex = configured_ifindex(spec);
  PathKey key;
  key.multihop = spec.multihop;
  key.peer = detail::without_scope(spec.peer);
  if (spec.multihop) {
    key.local = spec.local ? detail::without_scope(*spec.local) : asio::ip::address();
  } else {
    key.ifindex = ifindex;
  }
  if (table.has_path(key)) throw StartupError(who + ": duplicate session for the same path");

  const std::uint32_t id = new_slot_id();
  SessionSlot& s = *slots[id];
  s.peer = key.peer;
  s.peer_text = detail::address_text(
      spec.peer, spec.interface.empty() ? transport.interface_name(ifindex) : spec.interface);
  s.group = spec.group;
  s.signals = signals_for(spec.group, &spec);
  s.interface = spec.interface;
  s.ifindex = ifindex;
  s.local_cfg = spec.local;
  s.multihop = spec.multihop;
  s.passive = spec.passive;
  s.min_ttl = spec.multihop ? spec.min_ttl : 255;
  s.created = now;
  s.key = key;
  s.cfg_key = config::session_key(spec);

  PathSpec ps;
  ps.peer = spec.peer;
  if (spec.local) ps.local = with_scope(*spec.local, ifindex);
  ps.interface = spec.interface;
  ps.ifindex = ifindex;
  ps.multihop = spec.multihop;
  std::string error;
  auto discr = table.allocate_discriminator();
  if (!discr || !open_path(s, ps, error)) {
    if (discr) table.release_discriminator(*discr);
    slots[id].reset();
    free_ids.push_back(id);
    throw StartupError(who + ": " + (discr ? error : "no free discriminator"));
  }
  s.session.emplace(*discr, session_params(spec.params, spec.passive), now, rng());
  s.session->set_auth(spec.auth.keys);
  // A random initial phase: thousands of configured sessions must not all
  // send their first packet in the same instant (one wake-up, thousands of
  // sends, receive starved meanwhile). The spread grows with the number of
  // sessions up to the 1 s slow rate, so a small configuration still speaks
  // at once.
  const auto spread_us =
      std::min<std::int64_t>(static_cast<std::int64_t>(opts.sessions.size()) * kPhasePerSessionUs,
                             core::kOneSecond.count());
  if (spread_us > 1) {
    const auto phase = static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(spread_us));
    s.session->defer_first_packet(now + Duration{phase});
  }
  table.insert(id, *discr, key);
  index_slot(s);
  configured[config::session_key(spec)] = id;
  ++live;
  log->info("peer {} group {}: session created ({}{}, discriminator {}, source port {})",
            s.peer_text, s.group, s.multihop ? "multihop" : "single hop",
            s.passive ? ", passive" : "", *discr, s.source_port);
  apply_hold(s, now);
  rearm_slot(s);
}

// The configured timers plus what the engine adds to every session: the
// timer slot it serves deadlines in and the transport's batch delay.
core::SessionParams EngineCore::Impl::session_params(const core::SessionParams& base,
                                                     bool passive) const {
  core::SessionParams p = base;
  p.passive = passive;
  p.tx_slack = opts.timer_slot;
  p.tx_delay = opts.tx_delay;
  return p;
}

// ================================================================ timers

bool EngineCore::Impl::on_timer(std::size_t limit) {
  ++stats.timer_wakeups;
  const TimePoint now = clock.now();
  // Everything due within the slot is served in this one wake-up.
  const std::size_t served = sched.pop_due(
      now + opts.timer_slot,
      [&](Scheduler::Id id, TimePoint deadline) {
        const Duration late = std::max(now - deadline, Duration{0});
        ++stats.timer_fires;
        stats.timer_lateness_total += late;
        stats.timer_lateness_max = std::max(stats.timer_lateness_max, late);
        stats.timer_lateness.observe(late);
        on_due(id, now);
      },
      limit);
  // More is due only when the limit cut this round short. An entry re-armed
  // during it inside the slot is a detection or expiry deadline, which is
  // never served early: it waits for its own instant (next_wakeup()), or the
  // loop would spin until then.
  const auto next = sched.next();
  return served == limit && next && *next <= now + opts.timer_slot;
}

void EngineCore::Impl::on_due(std::uint32_t id, TimePoint wake) {
  if (id >= slots.size() || !slots[id]) return;
  SessionSlot& s = *slots[id];
  // The time this packet really leaves, not the start of the wake-up: with
  // hundreds of sends in one wake-up the later ones go out well after it, and
  // a schedule counted from the earlier instant would put the next packet
  // closer than 75 % of the interval to this one.
  const TimePoint now = std::max(wake, clock.now());
  if (s.removing && removal_done(s, now)) return finish_removal(id);
  if (s.dynamic && !s.removing && is_down(s.session->state()) && now >= gc_time(s)) {
    remove_slot(id, "peer silent");
    return;
  }
  if (s.session->next_deadline() <= now + opts.timer_slot) {
    carry_out(s, s.session->expire(now));
  }
  rearm_slot(s);
}

// SM-02: keep state at least one detection time after the last packet.
TimePoint EngineCore::Impl::gc_time(const SessionSlot& s) const {
  TimePoint last = std::max(s.created, s.session->last_state_change());
  if (auto rx = s.session->last_rx()) last = std::max(last, *rx);
  return last + std::max(s.session->detection_time(), kDynamicKeepMin);
}

void EngineCore::Impl::rearm_slot(SessionSlot& s) {
  TimePoint d = s.session->next_deadline();
  if (s.dynamic && is_down(s.session->state())) d = std::min(d, gc_time(s));
  if (s.removing) d = std::min(d, s.removing_until);
  sched.set(s.id, d);
}

void EngineCore::Impl::remove_slot(std::uint32_t id, std::string_view why) {
  SessionSlot& s = *slots[id];
  log->info("peer {} group {}: passive session removed ({})", s.peer_text, s.group, why);
  delete_slot(id);
  ++stats.passive_removed;
}

void EngineCore::Impl::delete_slot(std::uint32_t id) {
  SessionSlot& s = *slots[id];
  sched.remove(id);
  table.erase(s.session->local_discr(), s.key);
  table.release_discriminator(s.session->local_discr());
  table.release_source_port(s.source_port);
  if (s.path) transport.close_path(*s.path);
  if (s.accept_index >= 0) accept->removed(s.accept_index);
  unindex_slot(s);
  if (auto it = configured.find(s.cfg_key);
      !s.dynamic && it != configured.end() && it->second == id) {
    configured.erase(it);
  }
  slots[id].reset();
  free_ids.push_back(id);
  --live;
}

// ================================================================ receive

void EngineCore::Impl::drop(DropReason r, const RxInfo& info,
                            const core::wire::ControlPacket* pkt) {
  const auto i = static_cast<std::size_t>(r);
  ++stats.drops[i];
  // Authentication failures are a security event: a warning (rate-limited
  // per reason, so a flood cannot fill the log). The rest at debug.
  const bool auth = is_auth_failure(r);
  const auto level = auth ? spdlog::level::warn : spdlog::level::debug;
  if (!log->should_log(level)) return;
  const TimePoint now = clock.now();
  if (drop_logged[i] != TimePoint{} && now - drop_logged[i] < kDropLogInterval) return;
  drop_logged[i] = now;
  if (auth && pkt != nullptr) {
    std::string what = pkt->auth_present ? fmt::format("auth type {} key id {}",
                                                       core::wire::auth_type_name(pkt->auth.type),
                                                       pkt->auth.key_id)
                                         : std::string("no auth section");
    if (pkt->auth_present && core::auth::is_keyed(pkt->auth.type)) {
      what += fmt::format(" sequence {}", pkt->auth.sequence);
    }
    log->warn("authentication failure from {} port {}: {} ({}; {} so far)", info.src.to_string(),
              info.src_port, core::wire::drop_reason_name(r), what, stats.drops[i]);
    return;
  }
  log->log(level, "drop from {} port {}: {} ({} so far)", info.src.to_string(), info.src_port,
           core::wire::drop_reason_name(r), stats.drops[i]);
}

void EngineCore::Impl::on_datagram(std::span<const std::uint8_t> bytes, const RxInfo& info) {
  ++stats.rx_datagrams;
  core::wire::ControlPacket pkt;
  if (auto r = core::wire::decode(bytes, pkt); r != DropReason::None) return drop(r, info);
  // SH-07: single hop requires TTL/hop limit 255 (GTSM); MH-05: multihop a
  // configurable minimum. Checked before any lookup.
  if (info.multihop ? info.ttl < mh_min_ttl : info.ttl != 255) {
    return drop(DropReason::BadTtl, info);
  }
  const TimePoint now = clock.now();
  std::optional<std::uint32_t> id;
  if (pkt.your_discriminator != 0) {
    // Step 7 (PKT-18, DIS-02); MH-10: ports keep the two kinds apart.
    id = table.by_discriminator(pkt.your_discriminator);
    if (!id) return drop(DropReason::UnknownYourDiscriminator, info);
    if (slots[*id]->multihop != info.multihop) {
      slots[*id]->session->count_drop(DropReason::WrongPort);
      return drop(DropReason::WrongPort, info);
    }
  } else {
    // Step 8 (PKT-19).
    if (pkt.state == State::Init || pkt.state == State::Up) {
      return drop(DropReason::ZeroYourDiscInitUp, info);
    }
    // Step 9 (DIS-04): transport keys.
    PathKey key;
    key.multihop = info.multihop;
    key.peer = info.src;
    if (info.multihop) {
      key.local = info.dst;
    } else {
      key.ifindex = info.ifindex;
    }
    id = table.by_path(key);
    if (!id && info.multihop) {
      key.local = asio::ip::address();  // multihop session without a configured local
      id = table.by_path(key);
    }
    if (!id) return try_accept(pkt, bytes, info, now);
  }
  SessionSlot& s = *slots[*id];
  if (s.multihop && info.ttl < s.min_ttl) {
    s.session->count_drop(DropReason::BadTtl);
    return drop(DropReason::BadTtl, info);
  }
  const core::wire::State remote_before = s.session->remote_state();
  const std::uint8_t remote_diag_before = s.session->remote_diag();
  const core::Effects fx = s.session->receive(pkt, now, bytes);
  if (fx.drop != DropReason::None) return drop(fx.drop, info, &pkt);
  // What the peer says is shown too (remote state, diag): a reader right
  // after the peer came Up must see it without waiting for the periodic build.
  if (s.session->remote_state() != remote_before ||
      s.session->remote_diag() != remote_diag_before) {
    ++view_gen;
  }
  if (!s.local_seen && !info.dst.is_unspecified()) s.local_seen = info.dst;
  carry_out(s, fx);
  if (s.removing && removal_done(s, now)) return finish_removal(*id);
  rearm_slot(s);
}

// No session for a YD 0 packet: an [[accept]] rule may create a passive one.
void EngineCore::Impl::try_accept(const core::wire::ControlPacket& pkt,
                                  std::span<const std::uint8_t> bytes, const RxInfo& info,
                                  TimePoint now) {
  if (shutting_down) return drop(DropReason::NoSessionForPeer, info);
  const AcceptPolicy::Verdict v =
      accept->check(info.src, info.multihop, info.ifindex, info.ttl, now);
  if (v.drop != DropReason::None) {
    if (v.drop == DropReason::PassiveLimit) ++stats.passive_refused;
    return drop(v.drop, info);
  }
  const auto& a = opts.accepts[static_cast<std::size_t>(v.rule)];

  auto discr = table.allocate_discriminator();
  if (!discr) {
    ++stats.passive_refused;
    return drop(DropReason::PassiveLimit, info);
  }
  const unsigned ifindex = info.multihop ? accept->rule_ifindex(v.rule) : info.ifindex;
  const std::string ifname = transport.interface_name(ifindex);
  const SessionSignals signals = signals_for(a.group, nullptr);
  detail::HoldTarget t{info.src, ifname, ifindex, a.group};
  const detail::EffectiveHold eh = holds.effective(t, signals);

  // Run the packet through a session that is not in any table yet: if the
  // session drops it, nothing was created (PKT-11).
  core::Session session(*discr, session_params(a.params, true), now, rng());
  session.set_auth(a.auth.keys);  // the rule's authentication checks the first packet
  core::Effects fx_hold;
  if (eh.hold != core::Hold::None) fx_hold = session.set_hold(eh.hold, eh.diag, now);
  core::Effects fx = session.receive(pkt, now, bytes);
  if (fx.drop != DropReason::None) {
    table.release_discriminator(*discr);
    return drop(fx.drop, info, &pkt);
  }

  PathSpec ps;
  ps.peer = with_scope(info.src, ifindex);
  if (!info.dst.is_unspecified()) ps.local = with_scope(info.dst, ifindex);
  ps.interface = a.interface;
  ps.ifindex = ifindex;  // SH-11: answer through the ingress interface
  ps.multihop = info.multihop;

  const std::uint32_t id = new_slot_id();
  SessionSlot& s = *slots[id];
  std::string error;
  if (!open_path(s, ps, error)) {
    table.release_discriminator(*discr);
    slots[id].reset();
    free_ids.push_back(id);
    ++stats.tx_errors;
    log->warn("peer {}: cannot create passive session: {}", info.src.to_string(), error);
    ++stats.passive_refused;
    return drop(DropReason::PassiveLimit, info);
  }
  accept->created(v.rule);
  ++stats.passive_created;
  s.peer = info.src;
  s.interface = info.multihop ? a.interface : ifname;
  s.ifindex = ifindex;
  s.peer_text = detail::address_text(info.src, s.interface);
  s.group = a.group;
  s.local_seen = ps.local;
  s.multihop = info.multihop;
  s.passive = true;
  s.dynamic = true;
  s.accept_index = v.rule;
  s.signals = signals;
  s.min_ttl = info.multihop ? a.min_ttl : 255;
  s.created = now;
  s.key.multihop = info.multihop;
  s.key.peer = info.src;
  if (info.multihop) {
    s.key.local = info.dst;
  } else {
    s.key.ifindex = info.ifindex;
  }
  s.hold_source = eh.source;
  s.hold_diag = eh.diag;
  s.hold_reason = eh.hold == core::Hold::None ? std::string() : eh.reason;
  s.session.emplace(session);
  table.insert(id, *discr, s.key);
  index_slot(s);
  ++live;
  log->info(
      "peer {} group {}: passive session created by accept rule {}/{} (discriminator {}, "
      "source port {})",
      s.peer_text, s.group, a.prefix.to_string(), a.prefix_len, *discr, s.source_port);
  if (fx_hold.change) log_change(s, *fx_hold.change);
  // The session's own reply, not current_packet(): the peer's first packet may
  // carry P, and the answer must carry F (TMR-12).
  if (fx.send) {
    send_packet(s, *fx.send);
  } else if (fx_hold.send) {
    send_packet(s, s.session->next_packet());
  }
  if (fx.change) log_change(s, *fx.change);
  rearm_slot(s);
}

// ================================================================ effects

void EngineCore::Impl::carry_out(SessionSlot& s, const core::Effects& fx) {
  if (fx.send) send_packet(s, *fx.send);
  if (fx.change) log_change(s, *fx.change);
}

void EngineCore::Impl::send_packet(SessionSlot& s, const core::wire::ControlPacket& p) {
  std::array<std::uint8_t, core::wire::kMaxPacketLength> buf;
  // Signed with the session's key (RFC 5880 §6.7.3/6.7.4) once encoded.
  const std::size_t n = core::auth::encode(p, s.session->auth_keys(), buf);
  if (n != 0 && s.path && transport.send(*s.path, std::span<const std::uint8_t>(buf.data(), n))) {
    ++stats.tx_packets;
  } else {
    ++stats.tx_errors;  // counted, not logged: a dead peer must not flood the log
  }
}

void EngineCore::Impl::log_change(const SessionSlot& s, const core::StateChange& c) {
  ++view_gen;
  namespace w = core::wire;
  log->info("peer {} group {}: {} -> {} diag {} ({}); remote {} diag {}", s.peer_text, s.group,
            w::state_name(c.old_state), w::state_name(c.new_state), w::diag_name(c.local_diag),
            c.reason, w::state_name(c.remote_state), w::diag_name(c.remote_diag));
}

// ================================================================ shutdown

void EngineCore::Impl::begin_shutdown(core::Hold signal) {
  const TimePoint now = clock.now();
  shutting_down = true;
  shutdown_started = now;
  for (auto& p : slots) {
    if (!p) continue;
    const core::Session& ss = *p->session;
    p->shutdown_tracked = ss.state() == State::Up;
    // How long the peer takes to notice our silence by itself: its Detect
    // Mult x max(its Required Min RX, the Desired Min TX it last heard from
    // us), RFC 5880 §6.8.4. Waiting longer gains nothing: if the announcing
    // packet was lost, the peer has timed us out by then anyway.
    const Duration peer_detect =
        std::max(ss.remote_min_rx(), ss.effective_desired_min_tx()) *
        static_cast<std::int64_t>(std::max<std::uint8_t>(ss.remote_detect_mult(), 1));
    p->shutdown_until = now + std::min(peer_detect, kShutdownCap);
  }
  log->info("engine: shutting down, signalling {} to every session", core::hold_name(signal));
  // The change goes out at once (SM-21); after it each session keeps its own
  // schedule (1 s while not Up, nothing if the peer asked for Required Min
  // RX 0) instead of a burst of repeats.
  set_hold(HoldSource::Shutdown, Selector{}, signal, 0, "shutting down");
}

// The next instant a tracked session's wait ends (acks end it sooner).
TimePoint EngineCore::Impl::shutdown_wake() const {
  TimePoint next = shutdown_started + kShutdownCap;
  for (const auto& p : slots) {
    if (p && p->shutdown_tracked && !is_down(p->session->remote_state())) {
      next = std::min(next, p->shutdown_until);
    }
  }
  return next;
}

// Every session that was Up saw its peer acknowledge (Down/AdminDown) or
// waited one peer detection time, or kShutdownCap passed.
bool EngineCore::Impl::shutdown_complete(TimePoint now) const {
  if (now - shutdown_started >= kShutdownCap) return true;
  return std::all_of(slots.begin(), slots.end(), [now](const auto& p) {
    return !p || !p->shutdown_tracked || is_down(p->session->remote_state()) ||
           now >= p->shutdown_until;
  });
}

// ================================================================ EngineCore

EngineCore::EngineCore(EngineOptions opts, Transport& transport, const core::Clock& clock,
                       std::shared_ptr<spdlog::logger> log, std::uint64_t seed)
    : impl_(std::make_unique<Impl>(std::move(opts), transport, clock, std::move(log), seed)) {}

EngineCore::~EngineCore() = default;

void EngineCore::open() {
  impl_->open();
}

void EngineCore::set_tx_delay(Duration d) {
  impl_->opts.tx_delay = d;
}

void EngineCore::start() {
  impl_->run_at = impl_->clock.now();
}

void EngineCore::on_datagram(std::span<const std::uint8_t> bytes, const RxInfo& info) {
  impl_->on_datagram(bytes, info);
}

bool EngineCore::on_timer(std::size_t limit) {
  return impl_->on_timer(limit);
}

std::optional<TimePoint> EngineCore::next_wakeup() const {
  return impl_->sched.next();
}

HoldResult EngineCore::set_hold(HoldSource source, const Selector& sel, HoldCause cause,
                                std::string reason) {
  return impl_->set_hold(source, sel, cause, std::move(reason));
}

HoldResult EngineCore::set_hold(HoldSource source, const Selector& sel, core::Hold hold,
                                std::uint8_t diag, std::string reason) {
  return impl_->set_hold(source, sel, hold, diag, std::move(reason));
}

HoldResult EngineCore::set_maintenance(std::vector<MaintenanceScope> scopes) {
  return impl_->set_maintenance(std::move(scopes));
}

void EngineCore::begin_shutdown(core::Hold signal) {
  impl_->begin_shutdown(signal);
}

bool EngineCore::shutting_down() const {
  return impl_->shutting_down;
}

bool EngineCore::shutdown_done() const {
  return impl_->shutting_down && impl_->shutdown_complete(impl_->clock.now());
}

TimePoint EngineCore::shutdown_wake() const {
  return impl_->shutdown_wake();
}

std::uint64_t EngineCore::view_generation() const {
  return impl_->view_gen;
}

std::size_t EngineCore::session_count() const {
  return impl_->live;
}

}  // namespace beacon::engine
