// The engine's core: every BFD session of the daemon, the demultiplexing of
// received packets, the [[accept]] policy, holds, the fail-safe and the
// graceful shutdown, with no sockets, no timer and no thread of its own.
//
// The core reads time only through the injected core::Clock and does I/O only
// through the injected Transport, so a test drives it with a FakeClock and a
// fake transport: no root, no namespaces, no sleeps. The Asio loop around it
// (Engine) owns the sockets, the one timer and the thread, and after every
// call into the core re-arms its timer at next_wakeup() and flushes the
// transport.
//
// Per received datagram (RFC 5880 §6.8.6, RFC 5881 §5, RFC 5883):
//   decode (steps 1-6) -> TTL / hop limit (SH-07, MH-05) -> Your Discriminator
//   (step 7, MH-10) -> YD 0 with state Init/Up (step 8) -> transport keys
//   (step 9, DIS-04) -> [[accept]] rules (passive session, capped and
//   rate-limited) -> Session::receive (steps 10-22).
// A dropped packet only bumps its per-reason counter (PKT-11).
//
// Thread: one at a time (the engine loop). Nothing here blocks.
#pragma once

#include <spdlog/logger.h>

#include <boost/asio/ip/address.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "beacon/config/config.hpp"
#include "beacon/core/time.hpp"
#include "beacon/engine/types.hpp"

namespace beacon::engine {

// What the kernel told us about one received datagram.
struct RxInfo {
  boost::asio::ip::address src;  // without scope id (ifindex carries it)
  std::uint16_t src_port = 0;
  boost::asio::ip::address dst;  // destination address from packet info; unspecified if unknown
  unsigned ifindex = 0;          // ingress interface; 0 if unknown
  int ttl = -1;                  // received TTL / hop limit; -1 if the kernel gave none
  // SO_RXQ_OVFL: datagrams the kernel dropped on this socket so far (queue
  // full), cumulative since the socket was opened; -1 if not reported.
  std::int64_t kernel_drops = -1;
  bool multihop = false;  // arrived on the multihop port
};

// Everything needed to open the send path of one session.
struct PathSpec {
  boost::asio::ip::address peer;  // v6 link-local: scope id taken from ifindex
  std::optional<boost::asio::ip::address> local;
  std::string interface;  // bind to this device when non-empty (SH-11)
  unsigned ifindex = 0;   // interface index (0: none); scope for link-local
  bool multihop = false;
  std::uint16_t source_port = 0;
  std::uint16_t dest_port = 0;  // 0: 3784 / 4784 from `multihop`
};

struct PathOpenError {
  int errnum = 0;       // EADDRINUSE: try another source port
  std::string message;  // "cannot bind UDP 198.18.0.2:49152: Cannot assign requested address"
};

// The core's only way to the network and to interface names.
class Transport {
 public:
  using Path = std::uint32_t;
  virtual ~Transport() = default;

  // Opens the send path of one session (its own source port, TTL 255, DSCP
  // CS6). nullopt + `err` on failure; EADDRINUSE means the port is taken by
  // someone else and another may be tried.
  virtual std::optional<Path> open_path(const PathSpec& spec, PathOpenError& err) = 0;
  virtual void close_path(Path p) = 0;
  // Hands one packet to the path. May queue it until flush(); false when it
  // failed at once (counted by the core as a transmit error).
  virtual bool send(Path p, std::span<const std::uint8_t> bytes) = 0;
  // Sends whatever send() queued. Returns how many of those failed.
  virtual std::size_t flush() { return 0; }

  virtual unsigned interface_index(const std::string& name) const = 0;  // 0: no such interface
  virtual std::string interface_name(unsigned ifindex) const = 0;       // "": unknown
};

// A [[group]] driven by health checks (at least one check).
struct ManagedGroup {
  std::string name;
  core::Hold unhealthy_signal = core::Hold::Down;
  core::Hold maintenance_signal = core::Hold::Down;
  std::uint8_t diag = 5;
  std::size_t checks = 0;
};

// What the engine needs of the configuration, and nothing else.
struct EngineOptions {
  std::vector<config::SessionSpec> sessions;
  std::vector<config::AcceptSpec> accepts;
  std::vector<std::string> declared_groups;  // every [[group]] name, managed or not
  std::vector<ManagedGroup> managed;
  // Every [[group]] table, with or without checks: the signals its sessions
  // send (maintenance uses maintenance_signal and diag). A group without a
  // table sends Down, diag 5.
  std::vector<ManagedGroup> group_signals;
  // Operator maintenance in force when open() runs (the persistent state
  // file's): applied before any session is created, like the start-up hold,
  // so no session of a box in maintenance ever comes Up after a restart.
  std::vector<MaintenanceScope> initial_maintenance;
  std::uint8_t multihop_min_ttl = 254;
  std::uint32_t passive_create_per_second = 100;
  core::Duration timer_slot{50};
  // Longest a packet waits in the transport's batch before it leaves (0 when
  // every send leaves at once); see core::SessionParams::tx_delay.
  core::Duration tx_delay{0};
  core::Duration failsafe_timeout{1'000'000};
  // What a session removed by a reload signals ([daemon] shutdown_signal).
  core::Hold removal_signal = core::Hold::Down;

  static EngineOptions from(const config::Config& cfg);
};

class EngineCore {
 public:
  // `transport` and `clock` must outlive the core. `seed` feeds
  // discriminators, source ports, jitter and initial phases.
  EngineCore(EngineOptions opts, Transport& transport, const core::Clock& clock,
             std::shared_ptr<spdlog::logger> log, std::uint64_t seed);
  ~EngineCore();
  EngineCore(const EngineCore&) = delete;
  EngineCore& operator=(const EngineCore&) = delete;

  // Creates the configured sessions, each behind the start-up hold of its
  // health-managed group. Throws StartupError naming the session at fault.
  void open();
  // Before open(): the transport's batch delay (EngineOptions::tx_delay).
  void set_tx_delay(core::Duration d);
  // The fail-safe's first heartbeat window starts now.
  void start();

  // --- inputs
  void on_datagram(std::span<const std::uint8_t> bytes, const RxInfo& info);
  // Serves every deadline due within the timer slot, at most `limit`
  // sessions; returns true if more are due (the loop lets receive run, then
  // calls again).
  bool on_timer(std::size_t limit = static_cast<std::size_t>(-1));
  // Earliest instant on_timer() has work; nullopt when nothing is scheduled.
  std::optional<core::TimePoint> next_wakeup() const;

  HoldResult set_hold(HoldSource source, const Selector& sel, core::Hold hold, std::uint8_t diag,
                      std::string reason = {});
  // Replaces the whole set of maintenance scopes (HoldSource::Maintenance).
  // A session is held while "all" (group "") or its own group is in the set;
  // the group's reason wins over the all-scope's. The hold is the session's
  // maintenance signal (Down with its group's diag, or AdminDown diag 7).
  // Never refused: a group nobody uses yet is kept for sessions that appear
  // later. HoldResult::matched: sessions held for maintenance now.
  HoldResult set_maintenance(std::vector<MaintenanceScope> scopes);
  // A rule by cause (see Engine::set_hold): each matched session sends its
  // own SessionSignals' answer to `cause`. Refused for HoldCause::Fixed.
  HoldResult set_hold(HoldSource source, const Selector& sel, HoldCause cause, std::string reason);

  // Fail-safe: called every failsafe_period() with the time of the last
  // health heartbeat (nullopt: none yet). See Engine::heartbeat.
  bool failsafe_enabled() const;
  core::Duration failsafe_period() const;
  void failsafe_check(std::optional<core::TimePoint> last_heartbeat);
  // Shutdown has begun (a stop signal was taken): the fail-safe never trips
  // from here on, because the health side stops before the engine's shutdown
  // and a slow stop would otherwise send Down diag 5 ahead of the configured
  // shutdown signal. A hold the fail-safe already set stays in force.
  void disarm_failsafe();

  // Graceful shutdown (see Engine::shutdown). shutdown_done() turns true
  // when every session that was Up was acknowledged or waited for; until then
  // the loop calls shutdown_tick() at shutdown_wake() (packets also end it:
  // check shutdown_done() after each datagram).
  void begin_shutdown(core::Hold signal);
  bool shutting_down() const;
  bool shutdown_done() const;
  core::TimePoint shutdown_wake() const;

  // Applies a new configuration (see core_reload.cpp): unchanged sessions
  // are not touched; timer changes go through Session::set_params (a Poll
  // while Up); added sessions start like configured ones at open(), behind
  // their group's holds; removed ones signal `removal_signal` and are
  // deleted once the peer acknowledges or one detection time (at most 1 s)
  // passed. Accept rules are replaced at once; dynamic sessions no rule
  // covers are removed like configured ones. The options that need a
  // restart (timer_slot, tx_delay, failsafe_timeout) keep their running
  // values. Refused without any change (applied false) when an added
  // session or rule names an interface that does not exist or is otherwise
  // invalid. Never throws.
  ReloadResult reload(EngineOptions next);
  ReloadProgress reload_progress() const;

  // --- reads
  // Moves whenever what sessions() shows changes beyond its counters (a
  // state change, a session added or removed, a hold's source or reason);
  // the loop compares it after each turn to republish promptly.
  std::uint64_t view_generation() const;
  std::size_t session_count() const;
  // Snapshots of the sessions in slot order from `from` on, at most `max`;
  // `next` is where the following chunk starts, SIZE_MAX when done. Reading
  // in bounded chunks keeps a caller of 10,000 sessions from stalling the
  // loop.
  std::vector<SessionSnapshot> sessions(std::size_t from, std::size_t max, std::size_t& next) const;
  std::vector<SessionSnapshot> sessions() const;
  EngineStats stats() const;  // core's share; the loop adds its listeners'

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace beacon::engine
