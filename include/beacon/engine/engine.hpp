// The engine loop: UDP transport, one scheduler for every session, and the
// session table. Runs on its own thread (one boost::asio::io_context); the
// only work it does is packets and timers.
//
// Thread model: every public method below is safe to call from any other
// thread (the ops loop, main). They post to the engine loop and, where they
// return a value, block the caller until the engine loop has answered. None
// may be called from the engine thread itself.
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

namespace beacon::engine {

// Thrown by Engine::open() for a failed bind, bad address, unknown interface.
struct StartupError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Who asked for a hold. The effective hold of a session is the strongest over
// all sources (AdminDown > Down > None; on a tie the lower value wins); each
// source keeps its own rules. Count stays last.
// The engine's own fail-safe hold (see Engine::heartbeat) is a further,
// internal source ranked after these; a session it holds reports
// hold_source Health with a hold_reason ending in "(fail-safe)".
enum class HoldSource : std::uint8_t { Admin = 0, Health = 1, Shutdown = 2, Failsafe = 3, Count };

// "admin", "health", "shutdown", "failsafe": logs, bfdctl, metrics labels.
std::string_view hold_source_name(HoldSource s);

struct Selector {
  enum class Kind : std::uint8_t { All, Peer, Group } kind = Kind::All;
  std::string value;  // peer address text or group name
};

struct SessionSnapshot {
  std::string peer;       // "198.18.0.1" or "fe80::1%veth0"
  std::string local;      // local address in use ("" if not yet known)
  std::string interface;  // "" if unbound
  std::string group;
  bool multihop = false;
  bool passive = false;
  bool dynamic = false;  // created by an [[accept]] rule
  std::uint16_t source_port = 0;
  core::wire::State state = core::wire::State::Down;
  core::wire::State remote_state = core::wire::State::Down;
  std::uint8_t local_diag = 0;
  std::uint8_t remote_diag = 0;
  std::uint32_t local_discr = 0;
  std::uint32_t remote_discr = 0;
  core::Hold hold = core::Hold::None;
  HoldSource hold_source = HoldSource::Admin;  // meaningful when hold != None
  std::string hold_reason;  // reason of the winning rule ("" if none given or no hold)
  // The configured signals of the session's [[group]] ("down" | "admin-down");
  // both "" when the group is not health-managed (no [[group]] with checks).
  std::string unhealthy_signal;
  std::string maintenance_signal;
  core::SessionParams params{};
  core::Duration tx_interval{0};
  core::Duration detection_time{0};
  core::Duration remote_min_rx{0};
  core::Duration remote_desired_min_tx{0};
  std::uint8_t remote_detect_mult = 0;
  core::SessionCounters counters{};
  core::Duration since_change{0};
};

struct EngineStats {
  std::array<std::uint64_t, core::wire::kDropReasonCount> drops{};
  std::uint64_t rx_datagrams = 0;
  std::uint64_t tx_packets = 0;
  std::uint64_t tx_errors = 0;
  std::uint64_t sessions = 0;
  std::uint64_t timer_fires = 0;    // scheduler entries served (one per session deadline)
  std::uint64_t timer_wakeups = 0;  // times the engine's one timer fired (a wake-up serves many)
  std::uint64_t timer_arms = 0;     // times it was (re)programmed: a system call each
  core::Duration timer_lateness_max{0};    // worst (fire time - deadline)
  core::Duration timer_lateness_total{0};  // sum, for a mean
  std::uint64_t rx_errors = 0;             // recvmmsg failures other than EAGAIN
  std::uint64_t rx_kernel_drops = 0;       // dropped by the kernel: a listener's queue was full
  std::uint64_t rx_buffer_bytes = 0;       // smallest listener receive buffer in force
  std::uint64_t passive_created = 0;       // sessions created by [[accept]] rules
  std::uint64_t passive_removed = 0;       // dynamic sessions removed after going silent
  std::uint64_t failsafe_trips = 0;        // times the health heartbeat stalled (fail-safe)
};

struct HoldResult {
  std::size_t matched = 0;  // sessions the selector matched now
  std::string error;        // non-empty: refused (e.g. unknown peer or group)
};

class Engine {
 public:
  Engine(const config::Config& cfg, std::shared_ptr<spdlog::logger> log);
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

  // Fail-safe heartbeat: the health manager calls it every
  // health.heartbeat_interval while it is alive. Any thread, lock-free, never
  // blocks (one atomic store). When health-managed groups exist and no
  // heartbeat came for longer than health.failsafe_timeout (counted from
  // run() until the first one), the engine holds every health-managed group
  // Down (the engine's own fail-safe source, diag 5) and releases that hold once
  // heartbeats resume. Checked every failsafe_timeout / 4 on the engine loop.
  void heartbeat() noexcept;

  // Graceful stop: every Up session announces `signal` (Down diag 5, or
  // AdminDown diag 7) at once and then keeps its own schedule (1 s while not
  // Up; none if the peer asked for Required Min RX 0); the engine waits until
  // each peer acknowledges (Down/AdminDown) or one peer detection time passes,
  // at most 1 s in total; then the loop stops. Blocks until done.
  void shutdown(core::Hold signal);
  // Stops the loop at once and joins the thread.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace beacon::engine
