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
// Maintenance is the operator's maintenance / drain (bfdctl maintenance,
// drain, the persistent state file): per group or for all, and the hold it
// puts on a session is that session's maintenance signal, not one value per
// rule (see EngineCore::set_maintenance).
enum class HoldSource : std::uint8_t {
  Admin = 0,
  Health = 1,
  Shutdown = 2,
  Failsafe = 3,
  Maintenance = 4,
  Count
};

// "admin", "health", "shutdown", "failsafe", "maintenance": logs, bfdctl,
// metrics labels.
std::string_view hold_source_name(HoldSource s);

// A hold named by why it is asked for rather than by what goes on the wire,
// so every session sends its own signal (a [[session]] may override its
// group's unhealthy_signal / maintenance_signal). Fixed: the rule's own hold
// and diag, the same for every session.
enum class HoldCause : std::uint8_t {
  Fixed,
  Unhealthy,           // the session's unhealthy signal
  Maintenance,         // the session's maintenance signal
  MaintenanceFailing,  // in maintenance while a check also fails (see signal_for)
};

// The signals one session sends, resolved once when it is created: the
// [[session]]'s override where given, else its [[group]]'s, else Down.
struct SessionSignals {
  core::Hold unhealthy = core::Hold::Down;
  core::Hold maintenance = core::Hold::Down;
  std::uint8_t down_diag = 5;  // the group's diag for Down (Path Down by default)
  bool managed = false;        // its group is driven by health checks
  bool overridden = false;     // the [[session]] set at least one of the two
  friend bool operator==(const SessionSignals&, const SessionSignals&) = default;
};

struct ResolvedHold {
  core::Hold hold = core::Hold::None;
  std::uint8_t diag = 0;
};

// What `cause` makes this session send. AdminDown always carries diag 7
// (Administratively Down), Down the group's diag. MaintenanceFailing keeps
// the health policy's rule per session: maintenance wins, but a session whose
// unhealthy signal is Down is held Down, never the weaker AdminDown (which
// RFC 5882-strict routers ignore), so a broken box never keeps its route.
// Fixed is not resolved here (nullopt hold: None).
inline ResolvedHold signal_for(const SessionSignals& s, HoldCause cause) {
  core::Hold h = core::Hold::None;
  switch (cause) {
    case HoldCause::Unhealthy:
      h = s.unhealthy;
      break;
    case HoldCause::Maintenance:
      h = s.maintenance;
      break;
    case HoldCause::MaintenanceFailing:
      h = s.unhealthy == core::Hold::Down ? core::Hold::Down : s.maintenance;
      break;
    case HoldCause::Fixed:
      break;
  }
  if (h == core::Hold::AdminDown) {
    return {h, static_cast<std::uint8_t>(core::wire::Diag::AdministrativelyDown)};
  }
  return {h, h == core::Hold::Down ? s.down_diag : std::uint8_t{0}};
}

// "fixed", "unhealthy", "maintenance", "maintenance+failing": logs.
std::string_view hold_cause_name(HoldCause c);

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
  // Left the configuration in a reload: signalling [daemon] shutdown_signal
  // until the peer acknowledges or one detection time (at most 1 s) passes.
  bool removing = false;
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
  // The signals this session sends when unhealthy / in maintenance ("down" |
  // "admin-down"): its [[session]] override where given, else its group's;
  // both "" when neither a health-managed group nor an override sets them.
  std::string unhealthy_signal;
  std::string maintenance_signal;
  bool signal_override = false;  // the [[session]] overrides its group's signals
  // Authentication in use (RFC 5880 §6.7) and the Key ID it signs with
  // (meaningful when auth_type is not None). Never a secret.
  core::wire::AuthType auth_type = core::wire::AuthType::None;
  std::uint8_t auth_key_id = 0;
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

// One scope of operator maintenance: a group, or every session when `group`
// is empty. `reason` is shown as the hold reason of the sessions it holds.
struct MaintenanceScope {
  std::string group;
  std::string reason;
  friend bool operator==(const MaintenanceScope&, const MaintenanceScope&) = default;
};

// What a configuration reload did to the sessions (Engine::reload).
struct ReloadResult {
  bool applied = false;  // false: refused before anything changed (see errors)
  std::size_t added = 0, removed = 0, params_changed = 0, timers_changed = 0, moved = 0,
              unchanged = 0;
  std::size_t dynamic_removed = 0;  // accept-created sessions no rule covers any more
  std::size_t dynamic_kept = 0;
  bool accepts_replaced = false;
  std::vector<std::string> messages;  // one line per session touched
  std::vector<std::string> errors;    // refusals, or additions that failed
};

// What a reload still waits for (Engine::reload_progress).
struct ReloadProgress {
  std::size_t removing = 0;  // removed sessions not yet acknowledged or timed out
  std::size_t polls = 0;     // timer changes whose Poll sequence has not completed
  bool settled() const { return removing == 0 && polls == 0; }
};

// Everything the engine publishes periodically (Engine::publish_every) for
// readers that must never wait on the engine loop: the metrics scrape.
struct EngineSnapshot {
  std::vector<SessionSnapshot> sessions;  // slot order
  EngineStats stats;
  std::uint64_t sequence = 0;  // 1 for the first snapshot, +1 each
  // The engine's change sequence (Engine::change_sequence) when the build
  // started: every change up to it is in this snapshot.
  std::uint64_t changes = 0;
  // Loop time its chunks took together (each chunk is one loop turn).
  core::Duration build_time{0};
  core::TimePoint taken{};  // steady clock, when the build completed
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
