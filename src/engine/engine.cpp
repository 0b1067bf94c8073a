// The engine loop: one thread, one io_context, one timer for every session.
//
// Threads: everything in Impl runs on the engine thread, except open() (before
// the thread starts) and the small hand-off in call()/stop()/shutdown(). The
// public methods post a closure to the loop and wait on a promise.
//
// Per received datagram (RFC 5880 §6.8.6, RFC 5881 §5, RFC 5883):
//   decode (steps 1-6) -> TTL / hop limit (SH-07, MH-05) -> Your Discriminator
//   (step 7, MH-10) -> YD 0 with state Init/Up (step 8) -> transport keys
//   (step 9, DIS-04) -> [[accept]] rules (passive session, capped and
//   rate-limited) -> Session::receive (steps 10-22).
// A dropped packet only bumps its per-reason counter (PKT-11).
#include "beacon/engine/engine.hpp"

#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "engine_impl.hpp"

namespace beacon::engine {

namespace {

namespace asio = boost::asio;
using core::Duration;
using core::TimePoint;
using core::wire::DropReason;
using core::wire::State;
using detail::is_down;
using detail::to_asio;

// SM-02: a dynamic session is kept at least one detection time after the last
// packet, and never less than this.
constexpr Duration kDynamicKeepMin{5'000'000};
// Graceful shutdown never takes longer than this (systemd's stop timeout
// must cover it).
constexpr Duration kShutdownCap{1'000'000};
constexpr int kPortAttempts = 64;
constexpr Duration kDropLogInterval{1'000'000};

}  // namespace

// ================================================================ start-up

void Engine::Impl::open() {
  const TimePoint now = clock.now();
  handler = [this](std::span<const std::uint8_t> b, const detail::RxInfo& i) { on_datagram(b, i); };
  mh_min_ttl = cfg.bfd.multihop_min_ttl;
  for (const auto& s : cfg.sessions) {
    if (s.multihop) mh_min_ttl = std::min(mh_min_ttl, s.min_ttl);
  }
  for (const auto& a : cfg.accepts) {
    if (a.multihop) mh_min_ttl = std::min(mh_min_ttl, a.min_ttl);
    unsigned idx = 0;
    if (!a.interface.empty()) {
      idx = detail::interface_index(a.interface);
      if (idx == 0) {
        throw StartupError("accept " + a.prefix.to_string() + "/" + std::to_string(a.prefix_len) +
                           ": interface \"" + a.interface + "\" does not exist");
      }
    }
    accept_ifindex.push_back(idx);
    accept_count.push_back(0);
  }
  tokens = std::max<double>(cfg.bfd.passive_create_per_second, 1.0);
  tokens_at = now;
  init_health();  // before any session exists (issue 3: start-up order)
  open_listeners();
  for (const auto& spec : cfg.sessions) create_configured(spec, now);
  for (auto& l : listeners) l->start(batch, &handler);
  rearm_timer();
  log->info("engine: {} configured sessions, {} accept rules", cfg.sessions.size(),
            cfg.accepts.size());
}

void Engine::Impl::open_listeners() {
  // SH-01 / MH-01: 3784 and 4784, IPv4 and IPv6.
  for (bool mh : {false, true}) {
    for (bool v6 : {false, true}) {
      auto l = std::make_unique<detail::Listener>(
          io, v6, mh, mh ? core::wire::kMultiHopPort : core::wire::kSingleHopPort);
      if (!l->open()) {
        log->warn("engine: IPv6 is not available, not listening on [::]:{}", l->port());
        continue;
      }
      listeners.push_back(std::move(l));
    }
  }
}

std::uint32_t Engine::Impl::new_slot_id() {
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

// Allocates a source port (SH-02..04) and opens the send socket; a port some
// other process holds is skipped.
bool Engine::Impl::open_socket(SessionSlot& s, detail::SendSpec spec, std::string& error) {
  for (int attempt = 0; attempt < kPortAttempts; ++attempt) {
    auto port = table.allocate_source_port();
    if (!port) {
      error = "no free source port in 49152-65535";
      return false;
    }
    spec.source_port = *port;
    detail::SendOpenError err;
    auto sock = detail::SendSocket::open(spec, err);
    if (sock) {
      s.sock = std::move(*sock);
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

void Engine::Impl::create_configured(const config::SessionSpec& spec, TimePoint now) {
  const std::string who = "session " + detail::address_text(spec.peer, spec.interface);
  unsigned ifindex = 0;
  if (!spec.interface.empty()) {
    ifindex = detail::interface_index(spec.interface);
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
      spec.peer, spec.interface.empty() ? detail::interface_name(ifindex) : spec.interface);
  s.group = spec.group;
  s.interface = spec.interface;
  s.ifindex = ifindex;
  s.local_cfg = spec.local;
  s.multihop = spec.multihop;
  s.passive = spec.passive;
  s.min_ttl = spec.multihop ? spec.min_ttl : 255;
  s.created = now;
  s.key = key;

  detail::SendSpec ss;
  ss.peer = spec.peer;
  ss.local = spec.local;
  if (ss.local && ss.local->is_v6() && ss.local->to_v6().is_link_local() &&
      ss.local->to_v6().scope_id() == 0 && ifindex != 0) {
    auto v6 = ss.local->to_v6();
    v6.scope_id(ifindex);
    ss.local = v6;
  }
  ss.interface = spec.interface;
  ss.ifindex = ifindex;
  ss.multihop = spec.multihop;
  std::string error;
  auto discr = table.allocate_discriminator();
  if (!discr || !open_socket(s, ss, error)) {
    if (discr) table.release_discriminator(*discr);
    slots[id].reset();
    free_ids.push_back(id);
    throw StartupError(who + ": " + (discr ? error : "no free discriminator"));
  }
  core::SessionParams params = spec.params;
  params.passive = spec.passive;
  params.tx_slack = cfg.engine.timer_slot;
  s.session.emplace(*discr, params, now, rng());
  // A random initial phase: thousands of configured sessions must not all
  // send their first packet in the same instant (one wake-up, thousands of
  // sendto calls, receive starved meanwhile). The spread grows with the
  // number of sessions, 100 us each, up to the 1 s slow rate, so a small
  // configuration still speaks at once.
  {
    const auto spread_us = std::min<std::int64_t>(
        static_cast<std::int64_t>(cfg.sessions.size()) * 100, core::kOneSecond.count());
    if (spread_us > 1) {
      const auto phase = static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(spread_us));
      s.session->defer_first_packet(now + Duration{phase});
    }
  }
  table.insert(id, *discr, key);
  ++live;
  log->info("peer {} group {}: session created ({}{}, discriminator {}, source port {})",
            s.peer_text, s.group, s.multihop ? "multihop" : "single hop",
            s.passive ? ", passive" : "", *discr, s.source_port);
  apply_hold(s, now);
  rearm_slot(s);
}

// ================================================================ timers

void Engine::Impl::rearm_timer() {
  if (in_timer) return;  // on_timer() arms once, after serving everything due
  auto next = sched.next();
  if (!next) return;  // a stale wake-up is harmless; nothing to arm
  if (*next >= armed) return;
  armed = *next;
  ++stats.timer_arms;
  const std::uint64_t gen = ++timer_gen;
  timer.expires_at(to_asio(*next));
  timer.async_wait([this, gen](const boost::system::error_code& ec) {
    if (ec) return;  // operation_aborted: re-armed or closing
    on_timer(gen);
  });
}

void Engine::Impl::on_timer(std::uint64_t gen) {
  if (gen != timer_gen) return;  // superseded wait that completed anyway
  armed = TimePoint::max();
  ++stats.timer_wakeups;
  const TimePoint now = clock.now();
  {
    struct Serving {  // cleared even if a handler throws, or the timer stays dead
      bool& flag;
      explicit Serving(bool& f) : flag(f) { flag = true; }
      ~Serving() { flag = false; }
    } serving(in_timer);
    // Everything due within the slot is served in this one wake-up.
    sched.pop_due(now + cfg.engine.timer_slot, [&](Scheduler::Id id, TimePoint deadline) {
      const Duration late = std::max(now - deadline, Duration{0});
      ++stats.timer_fires;
      stats.timer_lateness_total += late;
      stats.timer_lateness_max = std::max(stats.timer_lateness_max, late);
      on_due(id, now);
    });
  }
  rearm_timer();
}

void Engine::Impl::on_due(std::uint32_t id, TimePoint wake) {
  if (id >= slots.size() || !slots[id]) return;
  SessionSlot& s = *slots[id];
  // The time this packet really leaves, not the start of the wake-up: with
  // hundreds of sends in one wake-up the later ones go out milliseconds
  // after it, and a schedule counted from the earlier instant would put the
  // next packet closer than 75 % of the interval to this one.
  const TimePoint now = std::max(wake, clock.now());
  if (s.dynamic && is_down(s.session->state()) && now >= gc_time(s)) {
    remove_slot(id, "peer silent");
    return;
  }
  if (s.session->next_deadline() <= now + cfg.engine.timer_slot) {
    carry_out(s, s.session->expire(now));
  }
  rearm_slot(s);
}

// SM-02: keep state at least one detection time after the last packet.
TimePoint Engine::Impl::gc_time(const SessionSlot& s) const {
  TimePoint last = std::max(s.created, s.session->last_state_change());
  if (auto rx = s.session->last_rx()) last = std::max(last, *rx);
  return last + std::max(s.session->detection_time(), kDynamicKeepMin);
}

void Engine::Impl::rearm_slot(SessionSlot& s) {
  TimePoint d = s.session->next_deadline();
  if (s.dynamic && is_down(s.session->state())) d = std::min(d, gc_time(s));
  sched.set(s.id, d);
  rearm_timer();
}

void Engine::Impl::remove_slot(std::uint32_t id, std::string_view why) {
  SessionSlot& s = *slots[id];
  log->info("peer {} group {}: passive session removed ({})", s.peer_text, s.group, why);
  sched.remove(id);
  table.erase(s.session->local_discr(), s.key);
  table.release_discriminator(s.session->local_discr());
  table.release_source_port(s.source_port);
  if (s.accept_index >= 0) --accept_count[static_cast<std::size_t>(s.accept_index)];
  slots[id].reset();
  free_ids.push_back(id);
  --live;
  ++stats.passive_removed;
}

// ================================================================ receive

void Engine::Impl::drop(DropReason r, const detail::RxInfo& info) {
  const auto i = static_cast<std::size_t>(r);
  ++stats.drops[i];
  if (!log->should_log(spdlog::level::debug)) return;
  const TimePoint now = clock.now();
  if (drop_logged[i] != TimePoint{} && now - drop_logged[i] < kDropLogInterval) return;
  drop_logged[i] = now;
  log->debug("drop from {} port {}: {} ({} so far)", info.src.to_string(), info.src_port,
             core::wire::drop_reason_name(r), stats.drops[i]);
}

void Engine::Impl::on_datagram(std::span<const std::uint8_t> bytes, const detail::RxInfo& info) {
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
    if (slots[*id]->multihop != info.multihop) return drop(DropReason::WrongPort, info);
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
    if (!id) return try_accept(pkt, info, now);
  }
  SessionSlot& s = *slots[*id];
  if (s.multihop && info.ttl < s.min_ttl) return drop(DropReason::BadTtl, info);
  const core::Effects fx = s.session->receive(pkt, now);
  if (fx.drop != DropReason::None) return drop(fx.drop, info);
  if (!s.local_seen && !info.dst.is_unspecified()) s.local_seen = info.dst;
  carry_out(s, fx);
  rearm_slot(s);
  if (shutting_down && shutdown_complete(now)) finish();
}

// No session for a YD 0 packet: an [[accept]] rule may create a passive one.
void Engine::Impl::try_accept(const core::wire::ControlPacket& pkt, const detail::RxInfo& info,
                              TimePoint now) {
  if (shutting_down) return drop(DropReason::NoSessionForPeer, info);
  std::size_t rule = cfg.accepts.size();
  for (std::size_t i = 0; i < cfg.accepts.size(); ++i) {
    const auto& a = cfg.accepts[i];
    if (a.multihop != info.multihop || a.prefix.is_v4() != info.src.is_v4()) continue;
    if (!a.contains(info.src)) continue;
    if (accept_ifindex[i] != 0 && accept_ifindex[i] != info.ifindex) continue;
    rule = i;
    break;
  }
  if (rule == cfg.accepts.size()) return drop(DropReason::NoSessionForPeer, info);
  const auto& a = cfg.accepts[rule];
  if (a.multihop && info.ttl < a.min_ttl) return drop(DropReason::BadTtl, info);
  if (accept_count[rule] >= a.max_sessions) return drop(DropReason::PassiveLimit, info);
  // Token bucket: a flood of YD 0 packets from many sources cannot create
  // sessions faster than passive_create_per_second.
  const double rate = cfg.bfd.passive_create_per_second;
  const double burst = std::max(rate, 1.0);
  tokens = std::min(burst, tokens + std::chrono::duration<double>(now - tokens_at).count() * rate);
  tokens_at = now;
  if (tokens < 1.0) return drop(DropReason::PassiveLimit, info);

  auto discr = table.allocate_discriminator();
  if (!discr) return drop(DropReason::PassiveLimit, info);
  const unsigned ifindex = info.multihop ? accept_ifindex[rule] : info.ifindex;
  const std::string ifname = detail::interface_name(ifindex);
  detail::HoldTarget t{info.src, ifname, ifindex, a.group};
  const detail::EffectiveHold eh = holds.effective(t);

  // Run the packet through a session that is not in any table yet: if the
  // session drops it, nothing was created (PKT-11).
  core::SessionParams params = a.params;
  params.passive = true;
  params.tx_slack = cfg.engine.timer_slot;
  core::Session session(*discr, params, now, rng());
  core::Effects fx_hold;
  if (eh.hold != core::Hold::None) fx_hold = session.set_hold(eh.hold, eh.diag, now);
  core::Effects fx = session.receive(pkt, now);
  if (fx.drop != DropReason::None) {
    table.release_discriminator(*discr);
    return drop(fx.drop, info);
  }

  detail::SendSpec ss;
  ss.peer = info.src;
  if (!info.dst.is_unspecified()) ss.local = info.dst;
  if (ifindex != 0) {
    auto scoped = [&](asio::ip::address addr) {
      if (addr.is_v6() && addr.to_v6().is_link_local()) {
        auto v6 = addr.to_v6();
        v6.scope_id(ifindex);
        return asio::ip::address(v6);
      }
      return addr;
    };
    ss.peer = scoped(ss.peer);
    if (ss.local) ss.local = scoped(*ss.local);
  }
  ss.interface = a.interface;
  ss.ifindex = ifindex;  // SH-11: answer through the ingress interface
  ss.multihop = info.multihop;

  const std::uint32_t id = new_slot_id();
  SessionSlot& s = *slots[id];
  std::string error;
  if (!open_socket(s, ss, error)) {
    table.release_discriminator(*discr);
    slots[id].reset();
    free_ids.push_back(id);
    ++stats.tx_errors;
    log->warn("peer {}: cannot create passive session: {}", info.src.to_string(), error);
    return drop(DropReason::PassiveLimit, info);
  }
  tokens -= 1.0;
  ++accept_count[rule];
  ++stats.passive_created;
  s.peer = info.src;
  s.interface = info.multihop ? a.interface : ifname;
  s.ifindex = ifindex;
  s.peer_text = detail::address_text(info.src, s.interface);
  s.group = a.group;
  s.local_seen = ss.local;
  s.multihop = info.multihop;
  s.passive = true;
  s.dynamic = true;
  s.accept_index = static_cast<int>(rule);
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
    send_packet(s, s.session->current_packet());
  }
  if (fx.change) log_change(s, *fx.change);
  rearm_slot(s);
}

// ================================================================ effects

void Engine::Impl::carry_out(SessionSlot& s, const core::Effects& fx) {
  if (fx.send) send_packet(s, *fx.send);
  if (fx.change) log_change(s, *fx.change);
}

void Engine::Impl::send_packet(SessionSlot& s, const core::wire::ControlPacket& p) {
  std::array<std::uint8_t, core::wire::kMaxPacketLength> buf;
  const std::size_t n = core::wire::encode(p, buf);
  if (n != 0 && s.sock.send(std::span<const std::uint8_t>(buf.data(), n))) {
    ++stats.tx_packets;
  } else {
    ++stats.tx_errors;  // counted, not logged: a dead peer must not flood the log
  }
}

void Engine::Impl::log_change(const SessionSlot& s, const core::StateChange& c) {
  namespace w = core::wire;
  log->info("peer {} group {}: {} -> {} diag {} ({}); remote {} diag {}", s.peer_text, s.group,
            w::state_name(c.old_state), w::state_name(c.new_state), w::diag_name(c.local_diag),
            c.reason, w::state_name(c.remote_state), w::diag_name(c.remote_diag));
}

// ================================================================ shutdown

void Engine::Impl::begin_shutdown(core::Hold signal) {
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
  if (shutdown_complete(now)) return finish();
  shutdown_tick(now);
}

// Wakes up when the next tracked session's wait ends (acks end it sooner:
// on_packet checks shutdown_complete()).
void Engine::Impl::shutdown_tick(TimePoint now) {
  TimePoint next = shutdown_started + kShutdownCap;
  for (const auto& p : slots) {
    if (p && p->shutdown_tracked && !is_down(p->session->remote_state())) {
      next = std::min(next, p->shutdown_until);
    }
  }
  shutdown_timer.expires_after(
      std::chrono::microseconds(std::max(next - now, Duration{0}).count()));
  shutdown_timer.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    const TimePoint t = clock.now();
    if (shutdown_complete(t)) return finish();
    shutdown_tick(t);
  });
}

// Every session that was Up saw its peer acknowledge (Down/AdminDown) or
// waited one peer detection time, or kShutdownCap passed.
bool Engine::Impl::shutdown_complete(TimePoint now) const {
  if (now - shutdown_started >= kShutdownCap) return true;
  return std::all_of(slots.begin(), slots.end(), [now](const auto& p) {
    return !p || !p->shutdown_tracked || is_down(p->session->remote_state()) ||
           now >= p->shutdown_until;
  });
}

// Stops the loop once the closures already posted have run.
void Engine::Impl::finish() {
  if (!shutting_down) return;
  shutting_down = false;
  {
    std::lock_guard lk(mu);
    running = false;
  }
  asio::post(io, [this] {
    timer.cancel();
    shutdown_timer.cancel();
    failsafe_timer.cancel();
    for (auto& l : listeners) l->close();
    io.stop();
    shutdown_done.set_value();
  });
}

template <class F>
auto Engine::Impl::call(F f) -> decltype(f()) {
  using R = decltype(f());
  std::unique_lock lk(mu);
  if (running) {
    std::promise<R> p;
    auto fut = p.get_future();
    asio::post(io, [&p, &f] {
      try {
        p.set_value(f());
      } catch (...) {
        p.set_exception(std::current_exception());
      }
    });
    lk.unlock();
    return fut.get();
  }
  // Loop not running: wait until the thread has left io.run(), then the
  // caller may touch the state directly.
  cv.wait(lk, [this] { return loop_done; });
  return f();
}

// ================================================================ Engine

Engine::Engine(const config::Config& cfg, std::shared_ptr<spdlog::logger> log)
    : impl_(std::make_unique<Impl>(cfg, std::move(log))) {}

Engine::~Engine() {
  stop();
}

void Engine::open() {
  std::lock_guard lk(impl_->mu);
  if (impl_->opened) return;
  impl_->open();
  impl_->opened = true;
}

void Engine::run() {
  if (!impl_->opened) open();
  std::lock_guard lk(impl_->mu);
  if (impl_->running || impl_->thread.joinable()) return;
  impl_->start_failsafe(impl_->clock.now());  // loop not running yet: safe here
  impl_->running = true;
  impl_->loop_done = false;
  impl_->thread = std::thread([impl = impl_.get()] {
    // A handler that throws (only std::bad_alloc is possible) loses its own
    // work; the loop goes on so callers waiting on posted closures are served.
    for (int failures = 0; failures < 100; ++failures) {
      try {
        impl->io.run();
        break;
      } catch (const std::exception& e) {
        impl->log->critical("engine loop: {}", e.what());
      }
    }
    std::lock_guard lk(impl->mu);
    impl->running = false;
    impl->loop_done = true;
    impl->cv.notify_all();
  });
}

std::vector<SessionSnapshot> Engine::sessions() {
  return impl_->call([this] { return impl_->sessions(); });
}

EngineStats Engine::stats() {
  return impl_->call([this] { return impl_->get_stats(); });
}

HoldResult Engine::set_hold(HoldSource source, const Selector& sel, core::Hold hold,
                            std::uint8_t diag) {
  return set_hold(source, sel, hold, diag, std::string());
}

HoldResult Engine::set_hold(HoldSource source, const Selector& sel, core::Hold hold,
                            std::uint8_t diag, std::string reason) {
  return impl_->call([&] { return impl_->set_hold(source, sel, hold, diag, std::move(reason)); });
}

std::string Engine::apply_realtime(const config::EngineConfig& rt) {
  if (!rt.cpu && rt.realtime_priority == 0) return {};
  return impl_->call([&rt]() -> std::string {
    if (rt.cpu) {
      const long cpus = ::sysconf(_SC_NPROCESSORS_CONF);
      if (cpus > 0 && *rt.cpu >= static_cast<unsigned long>(cpus)) {
        return "cpu " + std::to_string(*rt.cpu) + ": this machine has CPUs 0.." +
               std::to_string(cpus - 1);
      }
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(*rt.cpu, &set);
      if (int e = ::pthread_setaffinity_np(::pthread_self(), sizeof set, &set); e != 0) {
        return "cpu " + std::to_string(*rt.cpu) + ": pthread_setaffinity_np: " + std::strerror(e);
      }
    }
    if (rt.realtime_priority > 0) {
      sched_param sp{};
      sp.sched_priority = rt.realtime_priority;
      if (int e = ::pthread_setschedparam(::pthread_self(), SCHED_FIFO, &sp); e != 0) {
        return "realtime_priority " + std::to_string(rt.realtime_priority) +
               ": pthread_setschedparam(SCHED_FIFO): " + std::strerror(e) +
               (e == EPERM ? " (needs CAP_SYS_NICE)" : "");
      }
    }
    return {};
  });
}

void Engine::heartbeat() noexcept {
  static_assert(std::atomic<std::int64_t>::is_always_lock_free);
  impl_->last_heartbeat_us.store(impl_->clock.now().time_since_epoch().count(),
                                 std::memory_order_release);
}

void Engine::shutdown(core::Hold signal) {
  std::future<void> done;
  {
    std::lock_guard lk(impl_->mu);
    if (impl_->running) {  // else: never started or already stopping; join below
      impl_->shutdown_done = std::promise<void>();
      done = impl_->shutdown_done.get_future();
      asio::post(impl_->io, [impl = impl_.get(), signal] { impl->begin_shutdown(signal); });
    }
  }
  if (done.valid()) {
    // The loop caps the signalling at ~1 s; the extra margin only guards
    // against a wedged loop.
    if (done.wait_for(std::chrono::seconds(5)) != std::future_status::ready) {
      impl_->log->warn("engine: shutdown did not finish in time, stopping");
    }
  }
  stop();
}

void Engine::stop() {
  {
    std::lock_guard lk(impl_->mu);
    if (impl_->running) {
      impl_->running = false;
      asio::post(impl_->io, [impl = impl_.get()] {
        impl->timer.cancel();
        impl->shutdown_timer.cancel();
        impl->failsafe_timer.cancel();
        for (auto& l : impl->listeners) l->close();
        impl->io.stop();
      });
    }
  }
  if (impl_->thread.joinable() && impl_->thread.get_id() != std::this_thread::get_id()) {
    impl_->thread.join();
  }
}

}  // namespace beacon::engine
