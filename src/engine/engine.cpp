// The engine loop: one thread, one io_context, one timer for every session,
// around the pure EngineCore (core.hpp), which holds every session and all
// protocol logic. This file keeps only what needs the operating system: the
// listeners, the timer, the fail-safe and shutdown timers and the thread.
//
// Threads: everything in Impl runs on the engine thread, except open() (before
// the thread starts) and the small hand-off in call()/stop()/shutdown(). The
// public methods post a closure to the loop and wait on a promise.
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

// One timer wake-up serves at most this many sessions, then lets receive run
// before it serves the rest (a burst of transmissions never starves receive).
constexpr std::size_t kServeLimit = 512;
// A wake-up this late means the loop was stalled: read what is queued before
// any detection timer is served, so packets that did arrive count.
constexpr Duration kStallDrain{1'000};
// Snapshots are copied in chunks of this many sessions, one loop turn each.
constexpr std::size_t kSnapshotChunk = 256;
// The periodic snapshot runs every second whether anyone reads it or not:
// smaller chunks (measured: 256 sessions held the loop ~0.7 ms on a 2-vCPU
// VM) keep each turn well below a fast session's interval.
constexpr std::size_t kPublishChunk = 64;
// After a change a reader must see, the next build starts at once, but
// builds start at most this often: a burst of changes (a flapping peer,
// many holds) costs one build per gap, not one per change.
constexpr Duration kRepublishGap{20'000};
// A caller whose change is not published within this long goes on; its
// next read sees the latest snapshot (the loop was stalled).
constexpr std::chrono::milliseconds kPublishWait{500};
// The engine counters alone are republished this often (a copy of one
// struct: far cheaper than a snapshot of the sessions).
constexpr std::chrono::milliseconds kStatsPeriod{100};

}  // namespace

// ================================================================ start-up

void Engine::Impl::open() {
  handler = [this](std::span<const std::uint8_t> b, const detail::RxInfo& i) {
    core.on_datagram(b, i);
  };
  if (std::string why = transport.set_mode(transmit); !why.empty()) {
    if (transmit == "io_uring") {
      throw StartupError("[engine] transmit = \"io_uring\": " + why);
    }
    log->info("engine: io_uring unavailable ({}): one send(2) per packet", why);
  } else {
    log->info("engine: transmit {}", transport.batched()
                                         ? "batched: io_uring, one submission per 16 packets"
                                         : "unbatched: one send(2) per packet");
  }
  core.set_tx_delay(transport.batch_delay());
  open_listeners();
  core.open();
  for (auto& l : listeners) {
    l->start(batch, &handler, [this] {
      end_turn();
      if (core.shutting_down() && core.shutdown_done()) finish();
    });
  }
  end_turn();
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

// ================================================================ timers

void Engine::Impl::end_turn() {
  transport_failures += transport.flush();
  if (publish_period > Duration{0} && core.view_generation() != seen_gen) note_change(false);
  if (continuation_posted) return;  // the continuation serves and re-arms
  auto next = core.next_wakeup();
  if (!next || *next >= armed) return;  // a stale wake-up is harmless
  armed = *next;
  ++timer_arms;
  const std::uint64_t gen = ++timer_gen;
  timer.expires_at(detail::to_asio(*next));
  timer.async_wait([this, gen](const boost::system::error_code& ec) {
    if (ec) return;  // operation_aborted: re-armed or closing
    on_timer(gen);
  });
}

void Engine::Impl::on_timer(std::uint64_t gen) {
  if (gen != timer_gen) return;  // superseded wait that completed anyway
  if (armed != TimePoint::max() && clock.now() - armed > kStallDrain) {
    for (auto& l : listeners) l->poll();
  }
  armed = TimePoint::max();
  if (core.on_timer(kServeLimit)) {
    continuation_posted = true;
    asio::post(io, [this, gen] {
      continuation_posted = false;
      on_timer(gen);
    });
  }
  end_turn();
}

// ================================================================ fail-safe

void Engine::Impl::failsafe_tick() {
  failsafe_timer.expires_after(std::chrono::microseconds(core.failsafe_period().count()));
  failsafe_timer.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;  // cancelled: stopping
    if (failsafe_disarmed.load(std::memory_order_acquire)) {
      core.disarm_failsafe();  // shutdown has begun: no more checks
      return;
    }
    std::optional<TimePoint> last;
    if (const std::int64_t hb = last_heartbeat_us.load(std::memory_order_acquire); hb != 0) {
      last = TimePoint{Duration{hb}};
    }
    core.failsafe_check(last);
    end_turn();
    failsafe_tick();
  });
}

// ================================================================ snapshots

// Starts a build at publish_due; the build re-arms when it completes.
// Re-arming for an earlier instant (request_publish) supersedes the wait.
void Engine::Impl::publish_tick() {
  const std::uint64_t gen = ++publish_gen;
  publish_timer.expires_at(detail::to_asio(publish_due));
  publish_timer.async_wait([this, gen](const boost::system::error_code& ec) {
    if (ec || gen != publish_gen || building) return;  // cancelled or superseded
    last_build_start = clock.now();
    // Changes up to here are in every chunk copied from now on.
    seen_gen = core.view_generation();
    build_changes = changes;
    build_loop = Duration{0};
    building = std::make_shared<EngineSnapshot>();
    building->sessions.reserve(core.session_count());
    build_from = 0;
    publish_step();
  });
}

void Engine::Impl::stats_tick() {
  stats_timer.expires_after(kStatsPeriod);
  stats_timer.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;  // cancelled: stopping
    published_stats.publish(std::make_shared<const EngineStats>(get_stats()));
    stats_tick();
  });
}

std::uint64_t Engine::Impl::note_change(bool force) {
  if (publish_period <= Duration{0}) return 0;  // nothing is published
  const std::uint64_t gen = core.view_generation();
  if (force || gen != seen_gen) {
    seen_gen = gen;
    ++changes;
    changes_seen.store(changes, std::memory_order_release);
    request_publish();
  }
  return changes;
}

void Engine::Impl::request_publish() {
  if (building) {
    // Chunks already copied may predate the change: one more build after.
    republish = true;
    return;
  }
  const TimePoint at = std::max(clock.now(), last_build_start + kRepublishGap);
  if (at >= publish_due) return;  // the next build is due sooner anyway
  publish_due = at;
  publish_tick();
}

void Engine::Impl::wait_published(std::uint64_t seq) {
  if (seq == 0) return;
  std::unique_lock lk(pub_mu);
  pub_cv.wait_for(lk, kPublishWait, [&] { return published_changes >= seq; });
}

// One chunk per loop turn: packets and timers run between two chunks.
void Engine::Impl::publish_step() {
  const TimePoint t0 = clock.now();
  std::size_t next = 0;
  auto chunk = core.sessions(build_from, kPublishChunk, next);
  building->sessions.insert(building->sessions.end(), std::make_move_iterator(chunk.begin()),
                            std::make_move_iterator(chunk.end()));
  build_from = next;
  if (next != static_cast<std::size_t>(-1)) {
    const Duration took = clock.now() - t0;
    call_max = std::max(call_max, took);
    build_loop += took;
    asio::post(io, [this] {
      if (building) publish_step();
    });
    return;
  }
  building->stats = get_stats();
  building->sequence = ++publish_seq;
  building->changes = build_changes;
  building->taken = clock.now();
  building->anchor_steady = anchor_steady;
  building->anchor_wall = anchor_wall;
  building->build_time = build_loop + (clock.now() - t0);
  // The newest counters are the snapshot's: stats_view() reads this.
  published_stats.publish(std::make_shared<const EngineStats>(building->stats));
  published.publish(std::move(building));
  building.reset();
  {
    std::lock_guard lk(pub_mu);
    published_changes = build_changes;
  }
  pub_cv.notify_all();
  const TimePoint now = clock.now();
  call_max = std::max(call_max, now - t0);
  if (republish || changes != build_changes) {
    republish = false;
    publish_due = std::max(now, last_build_start + kRepublishGap);
  } else {
    publish_due = last_build_start + publish_period;
    if (publish_due <= now) publish_due = now + publish_period;  // the build overran
  }
  publish_tick();
}

// ================================================================ shutdown

// Wakes up when the next tracked session's wait ends (acks end it sooner:
// every receive batch checks shutdown_done()).
void Engine::Impl::shutdown_tick() {
  const Duration wait = std::max(core.shutdown_wake() - clock.now(), Duration{0});
  shutdown_timer.expires_after(std::chrono::microseconds(wait.count()));
  shutdown_timer.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    if (core.shutdown_done()) return finish();
    shutdown_tick();
  });
}

// Stops the loop once the closures already posted have run.
void Engine::Impl::finish() {
  if (finished) return;
  finished = true;
  {
    std::lock_guard lk(mu);
    running = false;
  }
  asio::post(io, [this] {
    timer.cancel();
    shutdown_timer.cancel();
    failsafe_timer.cancel();
    publish_timer.cancel();
    stats_timer.cancel();
    building.reset();
    for (auto& l : listeners) l->close();
    io.stop();
    shutdown_done.set_value();
  });
}

EngineStats Engine::Impl::get_stats() {
  EngineStats s = core.stats();
  s.timer_arms = timer_arms;
  s.tx_syscalls = transport.tx_syscalls();
  s.call_max = call_max;
  s.tx_packets -= std::min<std::uint64_t>(s.tx_packets, transport_failures);
  s.tx_errors += transport_failures;
  for (const auto& l : listeners) {
    s.rx_errors += l->stats().rx_errors;
    s.rx_kernel_drops += l->stats().kernel_drops;
    const auto buf = static_cast<std::uint64_t>(std::max(l->stats().rcvbuf, 0));
    if (s.rx_buffer_bytes == 0 || buf < s.rx_buffer_bytes) s.rx_buffer_bytes = buf;
  }
  return s;
}

template <class F>
auto Engine::Impl::call(F f) -> decltype(f()) {
  using R = decltype(f());
  std::unique_lock lk(mu);
  if (running) {
    std::promise<R> p;
    auto fut = p.get_future();
    asio::post(io, [this, &p, &f] {
      const TimePoint t0 = clock.now();
      try {
        p.set_value(f());
      } catch (...) {
        p.set_exception(std::current_exception());
      }
      call_max = std::max(call_max, clock.now() - t0);
    });
    lk.unlock();
    return fut.get();
  }
  // Loop not running: wait until the thread has left io.run(), then the
  // caller may touch the state directly.
  cv.wait(lk, [this] { return loop_done; });
  return f();
}

template <class F>
auto Engine::Impl::change(F f, bool force) -> decltype(f()) {
  std::uint64_t seq = 0;
  auto r = call([&] {
    auto out = f();
    end_turn();
    if (std::this_thread::get_id() == loop_id) seq = note_change(force);
    return out;
  });
  wait_published(seq);
  return r;
}

// ================================================================ Engine

Engine::Engine(const config::Config& cfg, std::shared_ptr<spdlog::logger> log)
    : impl_(std::make_unique<Impl>(cfg, std::move(log))) {}

Engine::Engine(const config::Config& cfg, std::shared_ptr<spdlog::logger> log,
               std::vector<MaintenanceScope> initial_maintenance)
    : impl_(std::make_unique<Impl>(cfg, std::move(log), std::move(initial_maintenance))) {}

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
  // Loop not running yet: safe here. The first heartbeat window starts now.
  impl_->core.start();
  if (impl_->core.failsafe_enabled()) impl_->failsafe_tick();
  if (impl_->publish_period > Duration{0}) {
    impl_->publish_due = impl_->clock.now();  // the first snapshot at once
    impl_->publish_tick();
    impl_->stats_tick();
  }
  impl_->running = true;
  impl_->loop_done = false;
  impl_->thread = std::thread([impl = impl_.get()] {
    impl->loop_id = std::this_thread::get_id();
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

// In chunks, one loop turn each: a caller reading 10,000 sessions never
// stalls the loop for more than one chunk. Sessions created or removed
// meanwhile may or may not be in the list; none appears twice.
std::vector<SessionSnapshot> Engine::sessions() {
  std::vector<SessionSnapshot> out;
  std::size_t from = 0;
  while (from != static_cast<std::size_t>(-1)) {
    std::size_t next = 0;
    auto chunk = impl_->call([&] { return impl_->core.sessions(from, kSnapshotChunk, next); });
    out.insert(out.end(), std::make_move_iterator(chunk.begin()),
               std::make_move_iterator(chunk.end()));
    from = next;
  }
  return out;
}

EngineStats Engine::stats() {
  return impl_->call([this] { return impl_->get_stats(); });
}

void Engine::publish_every(Duration period) {
  std::lock_guard lk(impl_->mu);
  if (impl_->running || impl_->thread.joinable()) return;  // before run() only
  impl_->publish_period = std::max(period, Duration{0});
}

std::shared_ptr<const EngineSnapshot> Engine::published() const {
  return impl_->published.get();
}

EngineStats Engine::stats_view() {
  if (auto st = impl_->published_stats.get()) return *st;
  return view()->stats;
}

std::shared_ptr<const EngineSnapshot> Engine::view() {
  if (auto p = impl_->published.get()) {
    // A change the loop already made (the peer came Up, say) but has not
    // published yet: wait for the build that covers it, at most one build
    // (~20 ms, bounded by kPublishWait when the loop is stalled), so a read
    // is as fresh as the moment it was asked.
    const std::uint64_t want = impl_->changes_seen.load(std::memory_order_acquire);
    if (p->changes >= want) return p;
    impl_->wait_published(want);
    return impl_->published.get();
  }
  auto snap = std::make_shared<EngineSnapshot>();
  snap->sessions = sessions();
  snap->stats = stats();
  return snap;
}

HoldResult Engine::set_hold(HoldSource source, const Selector& sel, core::Hold hold,
                            std::uint8_t diag) {
  return set_hold(source, sel, hold, diag, std::string());
}

// Holds and maintenance republish only when a session shows the difference
// (the health manager repeats unchanged verdicts); a reload always does
// (timers and signals are shown without a state change).
HoldResult Engine::set_hold(HoldSource source, const Selector& sel, core::Hold hold,
                            std::uint8_t diag, std::string reason) {
  return impl_->change(
      [&] { return impl_->core.set_hold(source, sel, hold, diag, std::move(reason)); }, false);
}

HoldResult Engine::set_maintenance(std::vector<MaintenanceScope> scopes) {
  return impl_->change([&] { return impl_->core.set_maintenance(std::move(scopes)); }, false);
}

HoldResult Engine::set_hold(HoldSource source, const Selector& sel, HoldCause cause,
                            std::string reason) {
  return impl_->change([&] { return impl_->core.set_hold(source, sel, cause, std::move(reason)); },
                       false);
}

ReloadResult Engine::reload(const config::Config& cfg) {
  return impl_->change([&] { return impl_->core.reload(EngineOptions::from(cfg)); }, true);
}

ReloadProgress Engine::reload_progress() {
  return impl_->call([this] { return impl_->core.reload_progress(); });
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

void Engine::disarm_failsafe() noexcept {
  impl_->failsafe_disarmed.store(true, std::memory_order_release);
}

void Engine::probe_alive() noexcept {
  if (impl_->alive_pending.exchange(true, std::memory_order_acq_rel)) return;
  try {
    asio::post(impl_->io, [impl = impl_.get()] {
      impl->alive_us.store(impl->clock.now().time_since_epoch().count(), std::memory_order_release);
      impl->alive_pending.store(false, std::memory_order_release);
    });
  } catch (...) {
    impl_->alive_pending.store(false, std::memory_order_release);  // out of memory: next time
  }
}

std::optional<core::TimePoint> Engine::last_alive() const noexcept {
  const std::int64_t us = impl_->alive_us.load(std::memory_order_acquire);
  if (us == 0) return std::nullopt;
  return core::TimePoint{core::Duration{us}};
}

void Engine::shutdown(core::Hold signal) {
  std::future<void> done;
  {
    std::lock_guard lk(impl_->mu);
    if (impl_->running) {  // else: never started or already stopping; join below
      impl_->shutdown_done = std::promise<void>();
      done = impl_->shutdown_done.get_future();
      asio::post(impl_->io, [impl = impl_.get(), signal] {
        impl->core.begin_shutdown(signal);
        impl->end_turn();
        if (impl->core.shutdown_done()) return impl->finish();
        impl->shutdown_tick();
      });
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

#ifdef BEACON_TEST_HOOKS
void Engine::debug_stall(Duration d) {
  asio::post(impl_->io, [d] { std::this_thread::sleep_for(std::chrono::microseconds(d.count())); });
}
#endif

void Engine::stop() {
  {
    std::lock_guard lk(impl_->mu);
    if (impl_->running) {
      impl_->running = false;
      asio::post(impl_->io, [impl = impl_.get()] {
        impl->timer.cancel();
        impl->shutdown_timer.cancel();
        impl->failsafe_timer.cancel();
        impl->publish_timer.cancel();
        impl->stats_timer.cancel();
        impl->building.reset();
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
