// One BFD session: the RFC 5880 state machine, timers and Poll/Final logic.
//
// Pure: no I/O, no clock, no allocation after construction. The engine calls
// receive()/expire()/set_hold()/set_params() with `now`, carries out the
// returned Effects (send the packet, log/report the change) and re-arms its
// scheduler entry at next_deadline(). Everything RFC 5880 says about a single
// session lives here; demultiplexing (which session a packet belongs to) and
// packet-only validation (wire::decode) live elsewhere.
//
// Out of scope by design: Echo and local Demand mode. We advertise Required
// Min Echo RX = 0 and never set D; a peer in Demand mode is handled (DE-03).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>

#include "beacon/core/auth.hpp"
#include "beacon/core/histogram.hpp"
#include "beacon/core/time.hpp"
#include "beacon/core/wire.hpp"

namespace beacon::core {

// Local policy that pins the session below Up (RFC 5880 §6.8.16, SM-22).
//  Down:      state Down with the given diag; keep sending Down and never
//             advance to Init/Up while held (local policy the RFC permits).
//  AdminDown: state AdminDown (diag 7 by default), §6.8.16.
enum class Hold : std::uint8_t { None, Down, AdminDown };

std::string_view hold_name(Hold h);  // "none", "down", "admin-down"

struct SessionParams {
  Duration desired_min_tx{50'000};   // bfd.DesiredMinTxInterval once Up
  Duration required_min_rx{50'000};  // bfd.RequiredMinRxInterval
  std::uint8_t detect_mult = 3;      // bfd.DetectMult, never 0
  bool passive = false;              // §6.1: send nothing until the peer speaks
  // A transmit deadline this close ahead counts as due: the engine serves all
  // deadlines of a short slot in one wake-up. The jitter's lower bound is
  // raised by as much, so a packet sent up to tx_slack early still leaves at
  // least 75 % of the interval after the previous one (§6.8.7). Detection
  // and expiry deadlines are never served early.
  Duration tx_slack{0};
  // How long a packet may wait between being handed out (Effects::send) and
  // really leaving, when the transport sends in batches. The jitter's lower
  // bound is raised by as much, so a packet that waited at the end of one
  // batch followed by one sent first in the next still keeps 75 %.
  Duration tx_delay{0};

  friend bool operator==(const SessionParams&, const SessionParams&) = default;
};

// One transition, for logs and clients (SM-25). `reason` is a static string.
struct StateChange {
  wire::State old_state = wire::State::Down;
  wire::State new_state = wire::State::Down;
  std::uint8_t local_diag = 0;
  wire::State remote_state = wire::State::Down;
  std::uint8_t remote_diag = 0;
  std::string_view reason;  // e.g. "peer signalled Init", "detection time expired"
};

struct Effects {
  wire::DropReason drop = wire::DropReason::None;  // receive(): §6.8.6 steps 10-12
  std::optional<wire::ControlPacket> send;         // transmit now
  std::optional<StateChange> change;
  // `send` also fills the periodic transmit slot (the schedule advanced). False
  // for packets sent outside the schedule (SM-21 state change, TMR-12 Final).
  bool periodic = false;
};

// The §6.2 / §6.8.6 state machine as a table (SM-03..SM-20). Exposed so a test
// can walk every (state, event) pair. Local policy (Hold) is applied on top:
// a session held Down never takes a row leading to Init or Up (SM-22).
enum class FsmEvent : std::uint8_t { RxAdminDown, RxDown, RxInit, RxUp, DetectionTimeout };
inline constexpr std::size_t kFsmEventCount = 5;

struct FsmTransition {
  wire::State next = wire::State::Down;
  int diag = -1;            // new bfd.LocalDiag, or -1: unchanged (SM-24)
  std::string_view reason;  // static; empty when the state does not change
  std::string_view rfc;     // RFC 5880 section and checklist ID
};

FsmTransition fsm_transition(wire::State state, FsmEvent event);

// Why a session left Up (a "flap"). Count stays last.
//  Timeout:       the detection time expired (§6.8.4, diag 1)
//  PeerDown:      the peer signalled Down (§6.8.6, diag 3)
//  PeerAdminDown: the peer signalled AdminDown (§6.8.6, diag 3)
//  LocalHold:     a local hold took it down (set-state, health, shutdown,
//                 fail-safe: SM-18, SM-22)
enum class FlapCause : std::uint8_t { Timeout, PeerDown, PeerAdminDown, LocalHold, Count };
inline constexpr std::size_t kFlapCauseCount = static_cast<std::size_t>(FlapCause::Count);
// "timeout", "peer-down", "peer-admin-down", "local-hold": bfdctl, metrics.
std::string_view flap_cause_name(FlapCause c);

inline constexpr std::size_t kStateCount = 4;  // wire::State values 0..3
// Every state, in wire order (for tables and metrics).
inline constexpr std::array<wire::State, kStateCount> kStates{
    wire::State::AdminDown, wire::State::Down, wire::State::Init, wire::State::Up};
// The drop reasons a session can be charged with (SessionCounters::drops):
// its own steps plus the engine's per-session rules (TTL, port).
// The authentication reasons (§6.8.6 steps 10-12, §6.7): unexpected auth,
// missing auth, bad digest or password, wrong type, unknown key id, bad
// sequence number.
inline constexpr std::array<wire::DropReason, 10> kSessionDropReasons{
    wire::DropReason::UnknownYourDiscriminator,
    wire::DropReason::ZeroYourDiscInitUp,
    wire::DropReason::AuthPresentNotConfigured,
    wire::DropReason::AuthMissing,
    wire::DropReason::AuthFailed,
    wire::DropReason::AuthWrongType,
    wire::DropReason::AuthUnknownKeyId,
    wire::DropReason::AuthBadSequence,
    wire::DropReason::BadTtl,
    wire::DropReason::WrongPort};

// Every counter starts at zero and only grows. Fixed-size arrays, no
// allocation: they are bumped on the hot path.
struct SessionCounters {
  std::uint64_t rx_packets = 0;  // accepted by the session
  std::uint64_t tx_packets = 0;  // every packet handed out in Effects::send
  std::uint64_t rx_dropped = 0;  // dropped by the session itself (steps 7-12)
  std::uint64_t state_changes = 0;
  std::uint64_t up_count = 0;    // transitions into Up
  std::uint64_t down_count = 0;  // transitions from Up to anything else
  std::uint64_t polls_started = 0;
  std::uint64_t finals_sent = 0;
  std::uint64_t detect_timeouts = 0;
  // Drops by reason: the session's own (rx_dropped) plus those the engine
  // attributes to this session (count_drop(): wrong port, TTL below the
  // session's minimum). Indexed by wire::DropReason.
  std::array<std::uint64_t, wire::kDropReasonCount> drops{};
  // State transitions, [from][to], indexed by wire::State.
  std::array<std::array<std::uint64_t, kStateCount>, kStateCount> transitions{};
  // Transitions out of Up by cause; their sum is down_count.
  std::array<std::uint64_t, kFlapCauseCount> flaps{};
  // Time between two accepted packets of the peer (a peer's first packet
  // and the first after a restart of the daemon are not gaps).
  GapHistogram rx_gap;
  // How late each periodic packet was handed to the transport against its
  // scheduled deadline (0 when served early within the timer slot).
  LatenessHistogram tx_lateness;
};

class Session {
 public:
  // `local_discr` must be nonzero and unique (DIS-01); `seed` feeds the jitter
  // generator (tests inject it). SM-01 initial state.
  Session(std::uint32_t local_discr, const SessionParams& params, TimePoint now,
          std::uint64_t seed);

  // A packet that passed wire::decode and demultiplexing (§6.8.6 steps 1-9).
  // Applies steps 10-22. On drop, Effects::drop says why and nothing changed.
  // `raw` is the received datagram the packet was decoded from (the digest
  // covers its bytes); empty: re-encoded from `pkt` (tests building structs).
  Effects receive(const wire::ControlPacket& pkt, TimePoint now,
                  std::span<const std::uint8_t> raw = {});

  // Authentication (RFC 5880 §6.7): the keys this session signs and checks
  // with; nullptr: none (bfd.AuthType 0). Sessions start without. Changing
  // the keys of the same type keeps the sequence state (a hitless key
  // rotation, AUTH-12); a change of type starts the receive side afresh
  // (bfd.AuthSeqKnown = 0). Takes effect on the next packet either way:
  // nothing is sent by this call. Received packets never change it (AUTH-13).
  void set_auth(std::shared_ptr<const auth::KeyRing> keys);
  const auth::KeyRing* auth_keys() const;
  wire::AuthType auth_type() const;     // None without keys
  bool auth_seq_known() const;          // bfd.AuthSeqKnown
  std::uint32_t rcv_auth_seq() const;   // bfd.RcvAuthSeq
  std::uint32_t xmit_auth_seq() const;  // bfd.XmitAuthSeq (of the last packet sent)

  // Call when now + params().tx_slack >= next_deadline(): periodic transmit
  // (due within the slack), detection timeout (diag 1), remote-state expiry
  // (DIS-05, TMR-17) (both due only at their deadline).
  Effects expire(TimePoint now);

  // Local hold (bfdctl set-state, health policy, shutdown). Takes effect at
  // once and sends a packet if the state or diag changed (SM-21).
  Effects set_hold(Hold hold, std::uint8_t diag, TimePoint now);

  // New configured timers; changes while Up go through a Poll (TMR-05..10).
  Effects set_params(const SessionParams& params, TimePoint now);

  // Before the first packet went out: move the first periodic packet to `at`
  // (later than now), so that many sessions started together spread their
  // first packets instead of sending them all in the same instant. A no-op
  // once anything was sent or when not sending periodically.
  void defer_first_packet(TimePoint at);

  // The packet the session would send right now (shutdown bursts, tests).
  // Does not change state or counters (its sequence number is the one the
  // next packet will carry).
  wire::ControlPacket current_packet() const;
  // current_packet() for sending: consumes its sequence number (a meticulous
  // peer drops a repeated one). Counters are unchanged, as for current_packet().
  wire::ControlPacket next_packet();

  // Earliest instant expire() has work; TimePoint::max() if none.
  TimePoint next_deadline() const;

  // --- read-only state for snapshots (RFC variable names) ---
  std::uint32_t local_discr() const;
  std::uint32_t remote_discr() const;
  wire::State state() const;
  wire::State remote_state() const;
  std::uint8_t local_diag() const;
  std::uint8_t remote_diag() const;
  Hold hold() const;
  const SessionParams& params() const;
  bool remote_demand() const;
  bool poll_active() const;
  Duration tx_interval() const;     // TMR-01, before jitter; 0 if not sending
  Duration detection_time() const;  // TMR-09; 0 until the peer is heard
  Duration remote_min_rx() const;   // bfd.RemoteMinRxInterval
  Duration remote_desired_min_tx() const;
  std::uint8_t remote_detect_mult() const;
  std::optional<TimePoint> last_rx() const;  // last accepted packet
  TimePoint last_state_change() const;
  const SessionCounters& counters() const;
  // Timer values in use (they differ from the advertised ones in
  // current_packet() only while a Poll defers them, TMR-06/07).
  Duration effective_desired_min_tx() const;
  Duration effective_required_min_rx() const;
  // A parameter change waits for the running Poll to finish (TMR-14).
  bool poll_queued() const;

  // Counts a packet the demultiplexer dropped after it had matched this
  // session (wrong port, TTL below this session's minimum). Only the
  // counter changes.
  void count_drop(wire::DropReason r);

 private:
  // All per-session state lives inline in this one flat object, so a later
  // hand-over to a new process can serialise exactly this.
  struct Vars {
    // RFC 5880 §6.8.1 state variables
    wire::State session_state = wire::State::Down;
    wire::State remote_session_state = wire::State::Down;
    std::uint32_t local_discr = 0;
    std::uint32_t remote_discr = 0;
    std::uint8_t local_diag = 0;
    std::uint8_t remote_diag = 0;
    Duration desired_min_tx{1'000'000};  // as advertised now
    Duration required_min_rx{50'000};    // as advertised now
    Duration remote_min_rx{1};
    Duration remote_desired_min_tx{0};
    std::uint8_t remote_detect_mult = 0;
    bool remote_demand = false;
    bool remote_known = false;  // heard within the last detection time (DIS-05)
    // Poll/Final (§6.5, §6.8.3)
    bool poll_active = false;
    bool poll_pending = false;  // new values advertised, P waits for TMR-14
    // TMR-14: after a Poll ends, the next one waits for a packet without F so a
    // late F for the old Poll cannot end the new one.
    bool non_final_since_poll = true;
    std::optional<TimePoint> last_poll_tx;       // last packet sent with P (TMR-14)
    TimePoint poll_started_at{};                 // when the running Poll began
    TimePoint poll_start_at = TimePoint::max();  // a queued Poll may start then
    // Values in use; they lag the advertised ones while a Poll defers them
    // (TMR-06/07) and equal them otherwise.
    Duration effective_tx{1'000'000};
    Duration effective_rx{50'000};
    // Timers
    TimePoint next_tx = TimePoint::max();
    Duration sched_interval{0};  // interval next_tx was drawn for; 0 = idle
    std::optional<TimePoint> last_periodic_tx;
    TimePoint detect_at = TimePoint::max();
    TimePoint remote_expire_at = TimePoint::max();  // DIS-05 / TMR-17 / SM-02
    std::optional<TimePoint> last_rx;
    TimePoint last_change{};
    Hold hold = Hold::None;
    std::uint64_t rng = 0;  // splitmix64 state for TMR-02/03 jitter
    // Authentication (§6.8.1): bfd.AuthSeqKnown, bfd.RcvAuthSeq, the last
    // verified packet (AUTH-11 counts silence from it), bfd.XmitAuthSeq.
    bool auth_seq_known = false;
    std::uint32_t rcv_auth_seq = 0;
    std::optional<TimePoint> last_auth_rx;
    auth::TxSeq xmit_auth;
  };

  bool can_send_any() const;
  bool can_send_periodic() const;
  bool remote_demand_active() const;
  Duration periodic_interval() const;
  Duration target_desired_min_tx() const;
  Duration jittered(Duration interval);
  Duration min_gap(Duration interval) const;  // bounds of jittered()
  Duration max_gap(Duration interval) const;
  wire::ControlPacket build_packet(bool final) const;
  // build_packet() with the auth section stamped (advances bfd.XmitAuthSeq).
  wire::ControlPacket build_sent_packet(bool final);
  wire::DropReason check_auth(const wire::ControlPacket& pkt, std::span<const std::uint8_t> raw,
                              TimePoint now) const;
  void enter_state(wire::State next, int diag, std::string_view reason, TimePoint now, Effects& fx,
                   FlapCause cause = FlapCause::LocalHold);
  bool run_fsm(FsmEvent event, TimePoint now, Effects& fx);
  bool poll_guard_met(TimePoint now) const;
  Duration poll_guard() const;
  TimePoint poll_timeout_at() const;
  void sync_timers(TimePoint now);
  void update_timers(TimePoint now);
  void finish(Effects& fx, TimePoint now, bool immediate, bool final);

  Vars v_;
  SessionParams params_;
  SessionCounters counters_;
  std::shared_ptr<const auth::KeyRing> auth_;
};

}  // namespace beacon::core
