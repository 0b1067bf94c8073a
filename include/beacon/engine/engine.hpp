// The engine loop: UDP transport, one scheduler for every session, and the
// session table. Runs on its own thread (one boost::asio::io_context); the
// only work it does is packets and timers.
//
// Thread model: every public method below is safe to call from any other
// thread (the ops loop, main). They post to the engine loop and, where they
// return a value, block the caller until the engine loop has answered,
// except the readers of what the loop publishes (published(), view(),
// stats_view()), which never wait on it. None may be called from the engine
// thread itself.
#pragma once

#include <spdlog/logger.h>

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "beacon/config/config.hpp"
#include "beacon/core/session.hpp"
#include "beacon/core/time.hpp"
#include "beacon/core/wire.hpp"
#include "beacon/engine/types.hpp"

namespace beacon::engine {

class Engine {
 public:
  Engine(const config::Config& cfg, std::shared_ptr<spdlog::logger> log);
  // `initial_maintenance`: operator maintenance in force from open() on,
  // before any session exists (the persistent state file's; see
  // EngineOptions::initial_maintenance).
  Engine(const config::Config& cfg, std::shared_ptr<spdlog::logger> log,
         std::vector<MaintenanceScope> initial_maintenance);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Opens sockets and creates configured sessions. Throws StartupError with a
  // message naming the address/interface/port at fault. Call once, before run().
  // Start-up order (issue 3): every health-managed group ([[group]] with at
  // least one check) starts with a Health hold Down (the group's diag, reason
  // "waiting for first health verdict"), so none of its sessions can come Up
  // before the health manager's first set_hold(Health, group, ...).
  void open();
  // Starts the engine thread. With health-managed groups it also starts the
  // fail-safe watch; the first heartbeat window starts now.
  void run();
  // Applies [engine] cpu / realtime_priority to the engine thread (from the
  // thread itself, after run()). Returns "" or what could not be applied,
  // e.g. "realtime_priority 50: sched_setscheduler: Operation not permitted
  // (needs CAP_SYS_NICE)". Nothing configured: "".
  std::string apply_realtime(const config::EngineConfig& rt);

  std::vector<SessionSnapshot> sessions();
  EngineStats stats();

  // Periodic snapshot publishing (for metrics and view()): every `period` from run()
  // on, the loop copies every session in chunks of 64, one loop turn each
  // (no turn holds the loop longer than one chunk; the time counts in
  // EngineStats::call_max), adds the stats and publishes the whole. Call
  // before run(); 0 (the default) publishes nothing. A build never overlaps
  // the next: the period counts from the previous build's start, or from
  // the end of a build that overran it. A change a reader must see (see
  // view()) starts a build early, at most one per 20 ms.
  void publish_every(core::Duration period);
  // The latest published snapshot; null before the first. Any thread; never
  // posts to or waits on the engine loop (a pointer copy under a lock held
  // only for that copy).
  std::shared_ptr<const EngineSnapshot> published() const;
  // What the ops side reads (control commands, STATUS=): the latest
  // published snapshot, never a wait on the engine loop. Fresh after a
  // change: set_hold, set_maintenance and reload return only once a snapshot
  // that shows their effect is published (or after 500 ms if the loop is
  // stalled), and a state change, a session added or removed, or a hold's
  // new reason is republished within ~20 ms (builds start at most every
  // 20 ms, in chunks of 64 sessions), and a read that comes while such a
  // change is not yet published waits for that build (bounded as above), so
  // it sees everything the loop had done when it was asked. Packet counters may be up to one
  // period old. Only when nothing is published (publish_every not called,
  // or before the first build) does it fall back to sessions() + stats(),
  // which wait on the loop.
  std::shared_ptr<const EngineSnapshot> view();
  // The engine counters for the ops side: published every 100 ms (and with
  // each snapshot) while publishing is on, so at most ~100 ms old; never a
  // wait on the loop. Falls back like view().
  EngineStats stats_view();
  // Holds apply to matching sessions now and to sessions created later
  // (passive sessions re-created after a peer restart come back held).
  // Hold::None releases this source's rule for the selector. Per source the
  // most specific rule wins (peer > group > all); a rule at one level clears
  // that source's narrower rules it covers (`--all` really means all). diag 0
  // means the default: 5 (Path Down) for Down, 7 (Admin Down) for AdminDown.
  // Refused (HoldResult::error) when a Peer/Group selector names nothing
  // known and hold != None.
  // `reason` is free text shown per session (SessionSnapshot::hold_reason),
  // e.g. "check haproxy-proc: process 1234 exited". A group declared by a
  // [[group]] table is known even without sessions.
  HoldResult set_hold(HoldSource source, const Selector& sel, core::Hold hold, std::uint8_t diag);
  HoldResult set_hold(HoldSource source, const Selector& sel, core::Hold hold, std::uint8_t diag,
                      std::string reason);
  // The same rule given by cause instead of by signal: every session it
  // matches (now or created later) sends its own signal for `cause`, from
  // its SessionSignals (the [[session]]'s unhealthy_signal /
  // maintenance_signal where given, else its group's): AdminDown with diag 7,
  // Down with the group's diag. The health policy's verdicts arrive this way;
  // Hold::None through the other form releases the rule. Refused for
  // HoldCause::Fixed.
  HoldResult set_hold(HoldSource source, const Selector& sel, HoldCause cause, std::string reason);

  // Replaces the operator maintenance scopes (EngineCore::set_maintenance):
  // each session they cover is held with its own maintenance signal.
  HoldResult set_maintenance(std::vector<MaintenanceScope> scopes);
  // Reload: applies `cfg` (already validated by the loader) on the engine
  // loop and waits for the result; see EngineCore::reload. Bounded work (one
  // pass over the sessions), never a wait on a peer: removed sessions finish
  // their signalling later, reload_progress() tells when.
  ReloadResult reload(const config::Config& cfg);
  ReloadProgress reload_progress();

  // Fail-safe heartbeat: the health manager calls it every
  // health.heartbeat_interval while it is alive. Any thread, lock-free, never
  // blocks (one atomic store). When health-managed groups exist and no
  // heartbeat came for longer than health.failsafe_timeout (counted from
  // run() until the first one), the engine holds every health-managed group
  // Down (the engine's own fail-safe source, diag 5) and releases that hold once
  // heartbeats resume. Checked every failsafe_timeout / 4 on the engine loop.
  void heartbeat() noexcept;
  // Called when a stop signal is taken, before the health side stops: the
  // fail-safe stops watching (EngineCore::disarm_failsafe). Any thread.
  void disarm_failsafe() noexcept;

  // Liveness proof for a supervisor (the systemd watchdog): posts a no-op to
  // the engine loop that records when it ran; last_alive() reads that time.
  // Any thread, never blocks, never throws. At most one probe is queued at a
  // time, so a stalled loop does not accumulate them; while the loop is
  // stalled or stopped, last_alive() simply stops advancing.
  void probe_alive() noexcept;
  // Steady-clock time the loop last ran a probe; nullopt before the first.
  std::optional<core::TimePoint> last_alive() const noexcept;

  // Graceful stop: every Up session announces `signal` (Down diag 5, or
  // AdminDown diag 7) at once and then keeps its own schedule (1 s while not
  // Up; none if the peer asked for Required Min RX 0); the engine waits until
  // each peer acknowledges (Down/AdminDown) or one peer detection time passes,
  // at most 1 s in total; then the loop stops. Blocks until done.
  void shutdown(core::Hold signal);
  // Stops the loop at once and joins the thread.
  void stop();

#ifdef BEACON_TEST_HOOKS
  // Tests only: blocks the engine loop for `d` (a stalled loop: packets
  // queue in the kernel, timers fall due). Returns at once.
  void debug_stall(core::Duration d);
#endif

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace beacon::engine
