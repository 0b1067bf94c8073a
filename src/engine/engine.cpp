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

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <random>
#include <thread>
#include <utility>

#include "beacon/engine/demux.hpp"
#include "beacon/engine/scheduler.hpp"
#include "holds_impl.hpp"
#include "transport_impl.hpp"

namespace beacon::engine {

namespace {

namespace asio = boost::asio;
using core::Duration;
using core::TimePoint;
using core::wire::DropReason;
using core::wire::State;

// SM-02: a dynamic session is kept at least one detection time after the last
// packet, and never less than this.
constexpr Duration kDynamicKeepMin{5'000'000};
constexpr Duration kShutdownRepeat{50'000};
constexpr Duration kShutdownCap{1'000'000};
constexpr int kShutdownPackets = 3;
constexpr int kPortAttempts = 64;
constexpr Duration kDropLogInterval{1'000'000};

bool is_down(State s) {
  return s == State::Down || s == State::AdminDown;
}

std::uint8_t default_diag(core::Hold h, std::uint8_t diag) {
  if (diag != 0) return diag;
  if (h == core::Hold::Down) return static_cast<std::uint8_t>(core::wire::Diag::PathDown);
  if (h == core::Hold::AdminDown) {
    return static_cast<std::uint8_t>(core::wire::Diag::AdministrativelyDown);
  }
  return 0;
}

asio::steady_timer::time_point to_asio(TimePoint t) {
  return asio::steady_timer::time_point(
      std::chrono::duration_cast<asio::steady_timer::duration>(t.time_since_epoch()));
}

}  // namespace

namespace detail {

// One session and its transport state.
struct SessionSlot {
  std::uint32_t id = 0;
  std::optional<core::Session> session;
  PathKey key;
  std::uint16_t source_port = 0;
  detail::SendSocket sock;
  asio::ip::address peer;  // without scope
  std::string peer_text;   // "198.18.0.1", "fe80::1%veth0"
  std::string group;
  std::string interface;
  unsigned ifindex = 0;
  std::optional<asio::ip::address> local_cfg;
  std::optional<asio::ip::address> local_seen;  // destination of received packets
  bool multihop = false;
  bool passive = false;
  bool dynamic = false;
  int accept_index = -1;
  std::uint8_t min_ttl = 255;
  HoldSource hold_source = HoldSource::Admin;
  std::uint8_t hold_diag = 0;
  TimePoint created{};
  // Graceful shutdown bookkeeping.
  bool shutdown_tracked = false;
  int shutdown_sent = 0;
};

}  // namespace detail

using detail::SessionSlot;

struct Engine::Impl {
  Impl(const config::Config& c, std::shared_ptr<spdlog::logger> l)
      : cfg(c),
        log(l ? std::move(l) : spdlog::default_logger()),
        table(std::random_device{}() | (std::uint64_t{std::random_device{}()} << 32)),
        rng(std::random_device{}()) {}

  // Declared first: destroyed last, after every object that refers to it.
  asio::io_context io;
  config::Config cfg;
  std::shared_ptr<spdlog::logger> log;
  core::SteadyClock clock;

  // Loop state.
  asio::steady_timer timer{io};
  TimePoint armed = TimePoint::max();
  std::uint64_t timer_gen = 0;
  Scheduler sched;
  SessionTable table;
  std::mt19937_64 rng;
  std::vector<std::unique_ptr<SessionSlot>> slots;  // index = scheduler id
  std::vector<std::uint32_t> free_ids;
  std::size_t live = 0;
  detail::RxBatch batch;
  detail::RxHandler handler;
  std::vector<std::unique_ptr<detail::Listener>> listeners;
  detail::HoldRules holds;
  EngineStats stats;
  std::vector<unsigned> accept_ifindex;
  std::vector<std::uint32_t> accept_count;
  double tokens = 0;
  TimePoint tokens_at{};
  std::uint8_t mh_min_ttl = 255;  // lowest min TTL of any multihop session/rule
  std::array<TimePoint, core::wire::kDropReasonCount> drop_logged{};

  // Shutdown.
  asio::steady_timer shutdown_timer{io};
  bool shutting_down = false;
  TimePoint shutdown_started{};
  std::promise<void> shutdown_done;

  // Thread hand-off.
  std::mutex mu;
  std::condition_variable cv;
  bool opened = false;
  bool running = false;   // closures may be posted
  bool loop_done = true;  // the thread is not inside io.run()
  std::thread thread;

  // ------------------------------------------------------------ start-up
  void open();
  void open_listeners();
  void create_configured(const config::SessionSpec& spec, TimePoint now);
  std::uint32_t new_slot_id();
  bool open_socket(SessionSlot& s, detail::SendSpec spec, std::string& error);

  // ------------------------------------------------------------ loop
  void rearm_timer();
  void on_timer(std::uint64_t gen);
  void on_due(std::uint32_t id, TimePoint now);
  void rearm_slot(SessionSlot& s);
  TimePoint gc_time(const SessionSlot& s) const;
  void remove_slot(std::uint32_t id, std::string_view why);
  void on_datagram(std::span<const std::uint8_t> bytes, const detail::RxInfo& info);
  void try_accept(const core::wire::ControlPacket& pkt, const detail::RxInfo& info, TimePoint now);
  void drop(DropReason r, const detail::RxInfo& info);
  void carry_out(SessionSlot& s, const core::Effects& fx);
  void send_packet(SessionSlot& s, const core::wire::ControlPacket& p);
  void log_change(const SessionSlot& s, const core::StateChange& c);
  detail::HoldTarget target(const SessionSlot& s) const;
  void apply_hold(SessionSlot& s, TimePoint now);
  HoldResult set_hold(HoldSource source, const Selector& sel, core::Hold hold, std::uint8_t diag);
  SessionSnapshot snapshot(const SessionSlot& s, TimePoint now) const;
  std::vector<SessionSnapshot> sessions();
  EngineStats get_stats();
  void begin_shutdown(core::Hold signal);
  void shutdown_tick();
  bool shutdown_complete(TimePoint now) const;
  void finish();

  template <class F>
  auto call(F f) -> decltype(f());
};

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
  s.session.emplace(*discr, params, now, rng());
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
  auto next = sched.next();
  if (!next) return;  // a stale wake-up is harmless; nothing to arm
  if (*next >= armed) return;
  armed = *next;
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
  const TimePoint now = clock.now();
  sched.pop_due(now, [&](Scheduler::Id id, TimePoint deadline) {
    const Duration late = std::max(now - deadline, Duration{0});
    ++stats.timer_fires;
    stats.timer_lateness_total += late;
    stats.timer_lateness_max = std::max(stats.timer_lateness_max, late);
    on_due(id, now);
  });
  rearm_timer();
}

void Engine::Impl::on_due(std::uint32_t id, TimePoint now) {
  if (id >= slots.size() || !slots[id]) return;
  SessionSlot& s = *slots[id];
  if (s.dynamic && is_down(s.session->state()) && now >= gc_time(s)) {
    remove_slot(id, "peer silent");
    return;
  }
  if (s.session->next_deadline() <= now) carry_out(s, s.session->expire(now));
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
  s.session.emplace(session);
  table.insert(id, *discr, s.key);
  ++live;
  log->info(
      "peer {} group {}: passive session created by accept rule {}/{} (discriminator {}, "
      "source port {})",
      s.peer_text, s.group, a.prefix.to_string(), a.prefix_len, *discr, s.source_port);
  if (fx_hold.change) log_change(s, *fx_hold.change);
  if (fx.send || fx_hold.send) send_packet(s, s.session->current_packet());
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
    if (s.shutdown_tracked) ++s.shutdown_sent;
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

// ================================================================ holds

detail::HoldTarget Engine::Impl::target(const SessionSlot& s) const {
  return detail::HoldTarget{s.peer, s.interface, s.ifindex, s.group};
}

void Engine::Impl::apply_hold(SessionSlot& s, TimePoint now) {
  const detail::EffectiveHold eh = holds.effective(target(s));
  if (eh.hold == s.session->hold() && (eh.hold == core::Hold::None || eh.diag == s.hold_diag)) {
    return;
  }
  s.hold_source = eh.source;
  s.hold_diag = eh.diag;
  carry_out(s, s.session->set_hold(eh.hold, eh.diag, now));  // SM-21: sent at once
  rearm_slot(s);
}

HoldResult Engine::Impl::set_hold(HoldSource source, const Selector& sel, core::Hold hold,
                                  std::uint8_t diag) {
  HoldResult r;
  if (static_cast<std::size_t>(source) >= static_cast<std::size_t>(HoldSource::Count)) {
    r.error = "invalid hold source";
    return r;
  }
  const detail::HoldRules::Rule rule{hold, default_diag(hold, diag)};
  switch (sel.kind) {
    case Selector::Kind::All:
      r.matched = live;
      holds.set_all(source, rule);
      break;
    case Selector::Kind::Group: {
      for (const auto& p : slots) r.matched += (p && p->group == sel.value) ? 1 : 0;
      const bool known = r.matched != 0 ||
                         std::any_of(cfg.sessions.begin(), cfg.sessions.end(),
                                     [&](const auto& s) { return s.group == sel.value; }) ||
                         std::any_of(cfg.accepts.begin(), cfg.accepts.end(),
                                     [&](const auto& a) { return a.group == sel.value; });
      if (!known && hold != core::Hold::None) {
        r.error = "no session in group \"" + sel.value + "\"";
        return r;
      }
      holds.set_group(source, sel.value, rule,
                      [&](const detail::PeerMatch& m, const std::string& g) {
                        return std::any_of(slots.begin(), slots.end(), [&](const auto& p) {
                          return p && p->group == g && detail::peer_matches(m, target(*p));
                        });
                      });
      break;
    }
    case Selector::Kind::Peer: {
      auto m = detail::parse_peer_selector(sel.value, r.error);
      if (!m) return r;
      for (const auto& p : slots) r.matched += (p && detail::peer_matches(*m, target(*p))) ? 1 : 0;
      if (r.matched == 0 && hold != core::Hold::None) {
        r.error = "no session with peer " + sel.value;
        return r;
      }
      holds.set_peer(source, *m, rule);
      break;
    }
  }
  const TimePoint now = clock.now();
  for (auto& p : slots) {
    if (p) apply_hold(*p, now);
  }
  if (source != HoldSource::Shutdown) {
    log->info("hold {} {} {}: {} diag {} ({} sessions)",
              source == HoldSource::Admin ? "admin" : "health",
              sel.kind == Selector::Kind::All     ? "all"
              : sel.kind == Selector::Kind::Group ? "group"
                                                  : "peer",
              sel.value, core::hold_name(hold), rule.diag, r.matched);
  }
  return r;
}

// ================================================================ snapshots

SessionSnapshot Engine::Impl::snapshot(const SessionSlot& s, TimePoint now) const {
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
  o.source_port = s.source_port;
  o.state = x.state();
  o.remote_state = x.remote_state();
  o.local_diag = x.local_diag();
  o.remote_diag = x.remote_diag();
  o.local_discr = x.local_discr();
  o.remote_discr = x.remote_discr();
  o.hold = x.hold();
  o.hold_source = s.hold_source;
  o.params = x.params();
  o.tx_interval = x.tx_interval();
  o.detection_time = x.detection_time();
  o.remote_min_rx = x.remote_min_rx();
  o.remote_desired_min_tx = x.remote_desired_min_tx();
  o.remote_detect_mult = x.remote_detect_mult();
  o.counters = x.counters();
  o.since_change = std::max(now - x.last_state_change(), Duration{0});
  return o;
}

std::vector<SessionSnapshot> Engine::Impl::sessions() {
  const TimePoint now = clock.now();
  std::vector<SessionSnapshot> out;
  out.reserve(live);
  for (const auto& p : slots) {
    if (p) out.push_back(snapshot(*p, now));
  }
  return out;
}

EngineStats Engine::Impl::get_stats() {
  EngineStats s = stats;
  s.sessions = live;
  for (const auto& l : listeners) s.rx_errors += l->stats().rx_errors;
  return s;
}

// ================================================================ shutdown

void Engine::Impl::begin_shutdown(core::Hold signal) {
  const TimePoint now = clock.now();
  shutting_down = true;
  shutdown_started = now;
  for (auto& p : slots) {
    if (!p) continue;
    p->shutdown_tracked = p->session->state() == State::Up;
    p->shutdown_sent = 0;
  }
  log->info("engine: shutting down, signalling {} to every session", core::hold_name(signal));
  set_hold(HoldSource::Shutdown, Selector{}, signal, 0);  // first packet at once (SM-21)
  if (shutdown_complete(now)) return finish();
  shutdown_tick();
}

void Engine::Impl::shutdown_tick() {
  shutdown_timer.expires_after(std::chrono::microseconds(kShutdownRepeat));
  shutdown_timer.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    const TimePoint now = clock.now();
    if (shutdown_complete(now)) return finish();
    for (auto& p : slots) {
      if (!p || !p->shutdown_tracked || p->shutdown_sent >= kShutdownPackets) continue;
      if (is_down(p->session->remote_state())) continue;
      send_packet(*p, p->session->current_packet());
    }
    if (shutdown_complete(now)) return finish();
    shutdown_tick();
  });
}

// Every session that was Up sent >= 3 shutdown packets or saw the peer
// acknowledge (its state Down/AdminDown), or ~1 s passed.
bool Engine::Impl::shutdown_complete(TimePoint now) const {
  if (now - shutdown_started >= kShutdownCap) return true;
  return std::all_of(slots.begin(), slots.end(), [](const auto& p) {
    return !p || !p->shutdown_tracked || p->shutdown_sent >= kShutdownPackets ||
           is_down(p->session->remote_state());
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
  return impl_->call([&] { return impl_->set_hold(source, sel, hold, diag); });
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
