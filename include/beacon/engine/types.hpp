// Types the engine shows to its callers and shares with its core: hold
// sources and selectors, per-session snapshots, loop statistics. Plain data;
// no threads, no I/O.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "beacon/core/histogram.hpp"
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
// Failsafe is the engine's own source (see Engine::heartbeat), set only by
// the engine itself; a session it holds reports hold_source Failsafe with a
// hold_reason ending in "(fail-safe)".
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
  core::TimePoint last_change{};  // steady clock: when the state last changed
};

struct EngineStats {
  std::array<std::uint64_t, core::wire::kDropReasonCount> drops{};
  std::uint64_t rx_datagrams = 0;
  std::uint64_t tx_packets = 0;
  std::uint64_t tx_errors = 0;
  std::uint64_t tx_syscalls = 0;  // transmit system calls (a batch is one)
  std::uint64_t sessions = 0;
  std::uint64_t timer_fires = 0;    // scheduler entries served (one per session deadline)
  std::uint64_t timer_wakeups = 0;  // times the engine's one timer fired (a wake-up serves many)
  std::uint64_t timer_arms = 0;     // times it was (re)programmed: a system call each
  core::Duration timer_lateness_max{0};    // worst (fire time - deadline)
  core::Duration timer_lateness_total{0};  // sum, for a mean
  core::LatenessHistogram timer_lateness;  // every fire's (fire time - deadline)
  std::uint64_t rx_errors = 0;             // recvmmsg failures other than EAGAIN
  std::uint64_t rx_kernel_drops = 0;       // dropped by the kernel: a listener's queue was full
  std::uint64_t rx_buffer_bytes = 0;       // smallest listener receive buffer in force
  std::uint64_t passive_created = 0;       // sessions created by [[accept]] rules
  std::uint64_t passive_removed = 0;       // dynamic sessions removed after going silent
  // Packets an [[accept]] rule matched that created no session: the rule's
  // cap or the creation rate limit (drop reason passive_limit), or no
  // discriminator or socket left.
  std::uint64_t passive_refused = 0;
  std::uint64_t failsafe_trips = 0;  // times the health heartbeat stalled (fail-safe)
  // Longest a caller's request (one chunk of a sessions read, stats, a hold)
  // held the engine loop: what a bfdctl or metrics reader costs the sessions.
  core::Duration call_max{0};
};

// Everything the engine publishes periodically (Engine::publish_every) for
// readers that must never wait on the engine loop: the metrics scrape.
struct EngineSnapshot {
  std::vector<SessionSnapshot> sessions;  // slot order
  EngineStats stats;
  std::uint64_t sequence = 0;  // 1 for the first snapshot, +1 each
  core::TimePoint taken{};     // steady clock, when the build completed
  // One fixed pair of clock readings taken when the engine was created: a
  // steady TimePoint t is wall time anchor_wall + (t - anchor_steady). Fixed
  // so a session's last-change time does not move between snapshots.
  core::TimePoint anchor_steady{};
  std::chrono::system_clock::time_point anchor_wall{};
};

struct HoldResult {
  std::size_t matched = 0;  // sessions the selector matched now
  std::string error;        // non-empty: refused (e.g. unknown peer or group)
};

}  // namespace beacon::engine
