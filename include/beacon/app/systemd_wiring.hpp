// The daemon's side of systemd supervision (Type=notify, WatchdogSec): when
// READY=1, STOPPING=1, STATUS= and WATCHDOG=1 are sent, over sd::Notifier.
//
//  - READY=1 once the sockets are bound (the caller starts this after
//    Engine::open() and the control server's start()) and every [[group]]
//    has its first verdict (groups without checks have theirs at the health
//    manager's start()); without groups, as soon as the engine runs. It
//    travels with the first STATUS= line.
//  - STATUS=<one line>, e.g. "3/3 sessions Up, group web healthy", sent
//    when it changes, recomputed at most every kStatusPeriod (and soon after
//    a group decision changes, at most every kStatusMinGap): it reads every
//    session from the engine, a bounded, chunked read.
//  - WATCHDOG=1 every WATCHDOG_USEC / 2 from a thread of its own, but only
//    while both loops prove they are alive: the ops loop stamps an atomic
//    from its own timer, the engine loop answers Engine::probe_alive(), and
//    each stamp must be younger than WATCHDOG_USEC / 4. A stalled loop (an
//    endless handler, a deadlock) thus stops the keep-alives and systemd
//    restarts the daemon, while the engine's own fail-safe has already
//    taken the sessions Down. The watchdog thread never waits on either loop.
//  - STOPPING=1 when the daemon takes SIGTERM/SIGINT (or the ops loop died),
//    before its peers are sent the shutdown signal; keep-alives end there.
//  - Reload (app/reload.hpp): reloading() before a new configuration is
//    applied, reloaded() once it is in force; both send nothing before the
//    first READY=1 (a reload during start-up is part of the start).
//
// Threads: start(), poke(), reloading() and reloaded() run on the ops loop;
// start_watchdog(), stopping() and the destructor on main. Nothing here throws to its caller or
// blocks on a socket.
#pragma once

#include <spdlog/logger.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "beacon/app/sd_notify.hpp"
#include "beacon/core/time.hpp"
#include "beacon/engine/engine.hpp"
#include "beacon/health/manager.hpp"

namespace beacon::app {

// STATUS= is recomputed at most this often on the ops loop's own timer...
inline constexpr core::Duration kStatusPeriod{500'000};
// ...and a group decision change brings it forward, but never closer than
// this to the previous computation ("at most a few times a second").
inline constexpr core::Duration kStatusMinGap{200'000};

// "3/3 sessions Up, group web healthy"; a group that is not healthy gives its
// reason ("group web unhealthy (check haproxy: HTTP 503)"), one still waiting
// for its first verdict says so. Only groups with checks are listed; beyond
// three they are counted ("groups: 4 healthy, 1 unhealthy (db)"). At most
// about 200 characters. Exposed for tests.
std::string status_line(const std::vector<engine::SessionSnapshot>& sessions,
                        const std::vector<health::GroupStatus>& groups);

// True once no group's verdict is Unknown.
bool first_verdicts_in(const std::vector<health::GroupStatus>& groups);

// Watchdog rule: both stamps exist and neither is older than `bound`.
// Returns "" when both loops are alive, else what is wrong ("ops loop silent
// for 1.20 s"). Exposed for tests.
std::string loops_dead(core::TimePoint now, std::optional<core::TimePoint> ops,
                       std::optional<core::TimePoint> engine, core::Duration bound);

class SystemdNotifier {
 public:
  // Disabled (every method a no-op) when env.notify_socket is empty.
  SystemdNotifier(sd::Environment env, boost::asio::io_context& ops, engine::Engine& engine,
                  std::shared_ptr<spdlog::logger> log);
  ~SystemdNotifier();  // ends the watchdog thread
  SystemdNotifier(const SystemdNotifier&) = delete;
  SystemdNotifier& operator=(const SystemdNotifier&) = delete;

  bool enabled() const noexcept { return notifier_.enabled(); }

  // Ops loop, after the health manager's start() has run there: starts the
  // ops timer (liveness stamp, STATUS=) and sends READY=1 once every group
  // has its first verdict. `health` must outlive the ops loop's run.
  void start(health::HealthManager& health);
  // Ops loop: a group decision changed (the health Sink's apply).
  // Re-evaluates readiness and STATUS= in a handler of its own, so it never
  // runs inside the health manager's call.
  void poke();
  // Main, after engine.run() and the ops thread started: starts the
  // keep-alives if $WATCHDOG_USEC asked for them.
  void start_watchdog();
  // Main, when the daemon begins to stop: STOPPING=1 with STATUS=<why>, and
  // no keep-alive or status after it.
  void stopping(std::string_view why);
  // Ops loop, for the reload code: RELOADING=1 + MONOTONIC_USEC= before
  // applying a new configuration, READY=1 (with a fresh STATUS= on the next
  // tick) after; nothing before the first READY=1.
  void reloading();
  void reloaded();

 private:
  void tick();
  void evaluate(bool from_tick);
  void stamp_ops() noexcept;
  void watchdog_main();
  void stop_watchdog();
  // Sends under mu_ unless stopping() already ran.
  bool send_unless_stopped(std::string_view message);

  sd::Notifier notifier_;
  std::optional<core::Duration> watchdog_;
  boost::asio::io_context& ops_;
  engine::Engine& engine_;
  std::shared_ptr<spdlog::logger> log_;

  // Ops loop state.
  core::Duration ops_period_;  // the ops timer: liveness stamp and STATUS=
  boost::asio::steady_timer timer_;
  health::HealthManager* health_ = nullptr;
  bool ready_ = false;
  bool poke_posted_ = false;
  bool status_dirty_ = false;  // a poke came too soon after the last STATUS=
  std::string last_status_;
  core::TimePoint last_status_at_{};

  // Shared with the watchdog thread and main.
  std::atomic<std::int64_t> ops_alive_us_{0};  // steady-clock microseconds, 0 = never
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopped_ = false;      // under mu_: STOPPING=1 sent, nothing more goes out
  bool stop_thread_ = false;  // under mu_
  std::thread watchdog_thread_;
};

}  // namespace beacon::app
