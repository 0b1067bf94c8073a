// The engine loop around EngineCore: one thread, one io_context, the
// listeners, the one timer, the fail-safe and shutdown timers. Private to
// src/engine. Everything here runs on the engine thread unless noted.
#pragma once

#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <condition_variable>
#include <future>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "beacon/engine/core.hpp"
#include "beacon/engine/engine.hpp"
#include "beacon/engine/published.hpp"
#include "transport_impl.hpp"

namespace beacon::engine {

namespace detail {

inline boost::asio::steady_timer::time_point to_asio(core::TimePoint t) {
  return boost::asio::steady_timer::time_point(
      std::chrono::duration_cast<boost::asio::steady_timer::duration>(t.time_since_epoch()));
}

}  // namespace detail

struct Engine::Impl {
  Impl(const config::Config& c, std::shared_ptr<spdlog::logger> l,
       std::vector<MaintenanceScope> initial_maintenance = {})
      : log(l ? std::move(l) : spdlog::default_logger()),
        transmit(c.engine.transmit),
        core(options(c, std::move(initial_maintenance)), transport, clock, log,
             std::random_device{}() | (std::uint64_t{std::random_device{}()} << 32)) {}

  static EngineOptions options(const config::Config& c, std::vector<MaintenanceScope> m) {
    EngineOptions o = EngineOptions::from(c);
    o.initial_maintenance = std::move(m);
    return o;
  }

  // Declared first: destroyed last, after every object that refers to it.
  boost::asio::io_context io;
  std::shared_ptr<spdlog::logger> log;
  core::SteadyClock clock;
  std::string transmit;  // [engine] transmit
  detail::SocketTransport transport;
  EngineCore core;

  // Loop state.
  boost::asio::steady_timer timer{io};
  core::TimePoint armed = core::TimePoint::max();
  std::uint64_t timer_gen = 0;
  std::uint64_t timer_arms = 0;
  bool continuation_posted = false;      // on_timer() left due work for after receive
  std::uint64_t transport_failures = 0;  // sends that failed in flush()
  core::Duration call_max{0};            // longest closure posted by call()
  detail::RxBatch batch;
  detail::RxHandler handler;
  std::vector<std::unique_ptr<detail::Listener>> listeners;

  // Fail-safe: last_heartbeat_us is written by any thread (Engine::heartbeat),
  // read by the loop; steady-clock microseconds, 0 = none yet.
  std::atomic<std::int64_t> last_heartbeat_us{0};
  std::atomic<bool> failsafe_disarmed{false};
  boost::asio::steady_timer failsafe_timer{io};

  // Liveness probe (Engine::probe_alive): alive_us is written by the loop,
  // read by any thread; steady-clock microseconds, 0 = never. alive_pending
  // is true while a probe is queued.
  std::atomic<std::int64_t> alive_us{0};
  std::atomic<bool> alive_pending{false};

  // Snapshot publishing (Engine::publish_every): one build at a time,
  // chunk by chunk; `building` is null between builds.
  core::Duration publish_period{0};
  boost::asio::steady_timer publish_timer{io};
  core::TimePoint publish_due{};
  std::shared_ptr<EngineSnapshot> building;
  std::size_t build_from = 0;
  std::uint64_t publish_seq = 0;
  core::TimePoint anchor_steady = clock.now();
  std::chrono::system_clock::time_point anchor_wall = std::chrono::system_clock::now();
  Published<EngineSnapshot> published;
  // Republishing on change (request_publish): `changes` counts changes a
  // reader must see (engine thread); `seen_gen` is the core's view
  // generation last accounted for; `build_changes` what the running build
  // reflects; `republish` asks for another build once it ends; `publish_gen`
  // tells a superseded timer wait from the current one.
  std::uint64_t changes = 0;
  // `changes` as other threads see it: view() waits for a build that covers it.
  std::atomic<std::uint64_t> changes_seen{0};
  std::uint64_t seen_gen = 0;
  std::uint64_t build_changes = 0;
  bool republish = false;
  std::uint64_t publish_gen = 0;
  core::TimePoint last_build_start{};
  core::Duration build_loop{0};  // loop time the running build has taken so far
  // The engine counters alone (O(1) to copy), republished every 100 ms
  // while publishing is on, so `stats` reads are never more than that old.
  Published<EngineStats> published_stats;
  boost::asio::steady_timer stats_timer{io};
  // Published change sequence, for callers waiting in wait_published().
  std::mutex pub_mu;
  std::condition_variable pub_cv;
  std::uint64_t published_changes = 0;  // guarded by pub_mu

  // Shutdown.
  boost::asio::steady_timer shutdown_timer{io};
  std::promise<void> shutdown_done;
  bool finished = false;

  // Thread hand-off.
  std::mutex mu;
  std::condition_variable cv;
  bool opened = false;
  bool running = false;   // closures may be posted
  bool loop_done = true;  // the thread is not inside io.run()
  std::thread thread;

  void open();
  void open_listeners();
  // After every call into the core: send what it queued, arm the timer at
  // its next deadline (once per loop turn: each arm is a timerfd_settime, on
  // a VM an exit that costs more than sending a packet).
  void end_turn();
  void on_timer(std::uint64_t gen);
  void failsafe_tick();
  void publish_tick();
  void publish_step();
  // Engine thread. Counts a change if the core's view moved (or `force`) and
  // then makes sure a build starts soon; returns the change sequence a
  // reader must wait for.
  std::uint64_t note_change(bool force);
  void request_publish();
  void stats_tick();
  // Caller thread: waits (bounded) until a snapshot reflecting change `seq`
  // is published. 0 means nothing to wait for.
  void wait_published(std::uint64_t seq);
  void shutdown_tick();
  void finish();
  EngineStats get_stats();

  template <class F>
  auto call(F f) -> decltype(f());
  // call() for a change a reader must see: after `f` (and end_turn) the loop
  // counts the change (always with `force`, else only if the core's view
  // moved), and the caller waits until a snapshot that has it is published,
  // so any read after this returns, by this client or another, sees it.
  template <class F>
  auto change(F f, bool force) -> decltype(f());
  std::thread::id loop_id;  // written by the loop thread before io.run()
};

}  // namespace beacon::engine
