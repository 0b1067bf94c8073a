// RFC 5880 session: state machine (§6.2, §6.8.6), timers (§6.8.2-6.8.4,
// §6.8.7), Poll/Final (§6.5, §6.8.3). See session.hpp for the contract.
//
// Every public entry point ends in finish(), which (1) starts or queues a Poll
// when the advertised timers must change (TMR-05, TMR-14), (2) recomputes the
// detection deadline (TMR-09) and the periodic schedule (TMR-01, TMR-08), and
// (3) builds the one packet this call sends, if any: an immediate one for a
// state/diag/hold change (SM-21) or a Final (TMR-12), or the periodic one when
// its slot is due. One packet can serve all three purposes.
#include "beacon/core/session.hpp"

#include <algorithm>
#include <array>

namespace beacon::core {

namespace {

using wire::State;

// Entering Up clears the diag. RFC 5880 only ever writes bfd.LocalDiag on a
// failure (erratum 7240, held, leaves it stale), but peers show it: FRR
// displays "path down" as the remote diag of a healthy session after a hold.
// A diag describes why the session last went down; once Up there is none.
constexpr std::uint8_t kDiagNone = 0;
constexpr std::uint8_t kDiagDetectExpired = 1;         // §4.1 diag 1
constexpr std::uint8_t kDiagNeighborSignaledDown = 3;  // §4.1 diag 3
constexpr std::uint8_t kDiagAdminDown = 7;             // §4.1 diag 7

constexpr std::size_t idx(State s) {
  return static_cast<std::size_t>(s);
}

// Rows indexed by local state (AdminDown, Down, Init, Up), columns by event
// (RxAdminDown, RxDown, RxInit, RxUp, DetectionTimeout). Straight from the
// §6.8.6 step 19 pseudo-code and §6.8.4.
using Row = std::array<FsmTransition, kFsmEventCount>;
constexpr std::array<Row, 4> kFsm{{
    // AdminDown: §6.8.6 step 18 discards every packet before the state machine
    // (SM-20); no detection timer runs (§6.8.4 only covers Init/Up).
    {{
        {State::AdminDown, -1, {}, "6.8.6 step 18, SM-20"},
        {State::AdminDown, -1, {}, "6.8.6 step 18, SM-20"},
        {State::AdminDown, -1, {}, "6.8.6 step 18, SM-20"},
        {State::AdminDown, -1, {}, "6.8.6 step 18, SM-20"},
        {State::AdminDown, -1, {}, "6.8.4, SM-20"},
    }},
    // Down
    {{
        {State::Down, -1, {}, "6.8.6, SM-03"},
        {State::Init, -1, "peer signalled Down", "6.8.6, SM-04"},
        {State::Up, kDiagNone, "peer signalled Init", "6.8.6, SM-05"},
        {State::Down, -1, {}, "6.2 three-way handshake, SM-06"},
        // Erratum 5205 (held) would set diag 1 here; we follow the RFC text.
        {State::Down, -1, {}, "6.8.4, SM-07"},
    }},
    // Init
    {{
        {State::Down, kDiagNeighborSignaledDown, "peer signalled AdminDown", "6.8.6, SM-08"},
        {State::Init, -1, {}, "6.8.6, SM-09"},
        {State::Up, kDiagNone, "peer signalled Init", "6.8.6, SM-10"},
        {State::Up, kDiagNone, "peer signalled Up", "6.8.6, SM-10"},
        {State::Down, kDiagDetectExpired, "detection time expired", "6.8.4, SM-11"},
    }},
    // Up
    {{
        {State::Down, kDiagNeighborSignaledDown, "peer signalled AdminDown", "6.8.6, SM-12"},
        {State::Down, kDiagNeighborSignaledDown, "peer signalled Down", "6.8.6, SM-13"},
        {State::Up, -1, {}, "6.8.6, SM-14"},
        {State::Up, -1, {}, "6.8.6, SM-14"},
        {State::Down, kDiagDetectExpired, "detection time expired", "6.8.4, SM-15"},
    }},
}};

FsmEvent event_for(State remote) {
  switch (remote) {
    case State::AdminDown:
      return FsmEvent::RxAdminDown;
    case State::Down:
      return FsmEvent::RxDown;
    case State::Init:
      return FsmEvent::RxInit;
    case State::Up:
      return FsmEvent::RxUp;
  }
  return FsmEvent::RxDown;
}

// splitmix64 finaliser: the random start of bfd.XmitAuthSeq (AUTH-06) is
// drawn from the session's seed without touching the jitter generator.
std::uint32_t initial_xmit_seq(std::uint64_t seed) {
  std::uint64_t z = seed + 0x632BE59BD9B4E019ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  z ^= z >> 31;
  return static_cast<std::uint32_t>(z >> 32);
}

std::uint32_t to_wire_us(Duration d) {
  const auto us = std::clamp<std::int64_t>(d.count(), 0, 0xFFFF'FFFF);
  return static_cast<std::uint32_t>(us);
}

SessionParams sanitized(SessionParams p) {
  // Config validation rejects these; never let them reach the wire (PKT-07/08).
  if (p.detect_mult == 0) p.detect_mult = 1;
  p.desired_min_tx = std::max(p.desired_min_tx, Duration{1});
  p.required_min_rx = std::max(p.required_min_rx, Duration{0});
  p.tx_slack = std::clamp(p.tx_slack, Duration{0}, Duration{10'000});
  return p;
}

}  // namespace

std::string_view hold_name(Hold h) {
  switch (h) {
    case Hold::None:
      return "none";
    case Hold::Down:
      return "down";
    case Hold::AdminDown:
      return "admin-down";
  }
  return "none";
}

std::string_view flap_cause_name(FlapCause c) {
  switch (c) {
    case FlapCause::Timeout:
      return "timeout";
    case FlapCause::PeerDown:
      return "peer-down";
    case FlapCause::PeerAdminDown:
      return "peer-admin-down";
    case FlapCause::LocalHold:
    case FlapCause::Count:
      break;
  }
  return "local-hold";
}

FsmTransition fsm_transition(State state, FsmEvent event) {
  return kFsm[idx(state)][static_cast<std::size_t>(event)];
}

Session::Session(std::uint32_t local_discr, const SessionParams& params, TimePoint now,
                 std::uint64_t seed)
    : params_(sanitized(params)) {
  // SM-01: Down/Down, diag 0, RemoteDiscr 0, RemoteMinRx 1 us, DesiredMinTx >= 1 s.
  v_.local_discr = local_discr;
  v_.rng = seed;
  v_.xmit_auth.seq = initial_xmit_seq(seed);  // AUTH-06
  v_.desired_min_tx = target_desired_min_tx();
  v_.required_min_rx = params_.required_min_rx;
  v_.effective_tx = v_.desired_min_tx;
  v_.effective_rx = v_.required_min_rx;
  v_.last_change = now;
  update_timers(now);  // an active session is due to send at once
}

// ---------------------------------------------------------------- entry points

Effects Session::receive(const wire::ControlPacket& pkt, TimePoint now,
                         std::span<const std::uint8_t> raw) {
  Effects fx;
  // Steps 7 and 8 belong to the demultiplexer; defend against a wrong caller.
  if (pkt.your_discriminator != 0 && pkt.your_discriminator != v_.local_discr) {
    fx.drop = wire::DropReason::UnknownYourDiscriminator;  // step 7, PKT-18
  } else if (pkt.your_discriminator == 0 && (pkt.state == State::Init || pkt.state == State::Up)) {
    fx.drop = wire::DropReason::ZeroYourDiscInitUp;  // step 8, PKT-19
  } else {
    fx.drop = check_auth(pkt, raw, now);  // steps 10-12
  }
  if (fx.drop != wire::DropReason::None) {
    ++counters_.rx_dropped;  // PKT-11: no other side effect
    ++counters_.drops[static_cast<std::size_t>(fx.drop)];
    return fx;
  }
  if (auth_) {
    // Errata 7082/7083 (AUTH-10): only a packet whose digest verified sets
    // bfd.AuthSeqKnown and bfd.RcvAuthSeq, the first one included.
    if (auth::is_keyed(auth_->type())) {
      v_.auth_seq_known = true;
      v_.rcv_auth_seq = pkt.auth.sequence;
    }
    v_.last_auth_rx = now;
  }
  ++counters_.rx_packets;
  if (v_.last_rx) counters_.rx_gap.observe(now - *v_.last_rx);

  // Step 13 (PKT-24, DIS-03): store the remote variables.
  v_.remote_discr = pkt.my_discriminator;
  v_.remote_session_state = pkt.state;
  v_.remote_demand = pkt.demand;
  v_.remote_min_rx = from_wire_us(pkt.required_min_rx_us);
  v_.remote_desired_min_tx = from_wire_us(pkt.desired_min_tx_us);
  v_.remote_detect_mult = pkt.detect_mult;
  v_.remote_diag = pkt.diag;
  v_.remote_known = true;
  // Step 14: no Echo (we advertise Required Min Echo RX = 0).
  // Step 15 (PKT-26): F ends our Poll; the deferred values apply (TMR-06/07).
  if (pkt.final && v_.poll_active) {
    v_.poll_active = false;
    v_.effective_tx = v_.desired_min_tx;
    v_.effective_rx = v_.required_min_rx;
    v_.non_final_since_poll = false;
  }
  if (!pkt.final) v_.non_final_since_poll = true;
  // Step 22 (PKT-30): an accepted packet restarts detection; steps 16-17 (the
  // new tx interval and detection time) are recomputed in finish().
  v_.last_rx = now;

  bool changed = false;
  // Step 18 (PKT-27, ADM-04): AdminDown stops here, remote variables updated.
  if (v_.session_state != State::AdminDown) {
    changed = run_fsm(event_for(pkt.state), now, fx);  // step 19
  }
  // Step 20 (DE-03) is part of can_send_periodic(). Step 21 (PKT-29, TMR-12):
  // answer P with F, P = 0 -- also in AdminDown (ADM-05: §6.8.7 says "in any
  // state", and a reply is harmless).
  finish(fx, now, changed, pkt.poll);
  return fx;
}

Effects Session::expire(TimePoint now) {
  Effects fx;
  bool changed = false;
  if (now >= v_.detect_at) {
    changed = run_fsm(FsmEvent::DetectionTimeout, now, fx);  // §6.8.4, SM-11/15
    if (changed) ++counters_.detect_timeouts;
  }
  if (now >= v_.remote_expire_at) {
    // §6.8.1 / §6.8.18 (DIS-05, TMR-17): a detection time of silence forgets
    // the peer; the session itself (state, timers) stays (SM-02).
    v_.remote_known = false;
    v_.remote_discr = 0;
    v_.remote_min_rx = Duration{1};
    v_.remote_demand = false;
    // What we last heard is no longer the peer's state: a silent peer is Down
    // (bfdctl must not keep showing "remote Up" for a dead peer).
    v_.remote_session_state = State::Down;
    v_.remote_diag = 0;
  }
  finish(fx, now, changed, false);
  return fx;
}

Effects Session::set_hold(Hold hold, std::uint8_t diag, TimePoint now) {
  Effects fx;
  const Hold old_hold = v_.hold;
  const std::uint8_t old_diag = v_.local_diag;
  const State old_state = v_.session_state;
  v_.hold = hold;
  switch (hold) {
    case Hold::None:
      // §6.8.16 admin enable (SM-19): AdminDown -> Down, diag unchanged. A
      // released Down hold simply lets the next rx Down lead to Init.
      if (old_state == State::AdminDown) enter_state(State::Down, -1, "hold released", now, fx);
      break;
    case Hold::Down:
      // SM-22: local policy holding the session in Down with the given diag.
      if (old_state != State::Down) {
        enter_state(State::Down, diag, "local hold", now, fx);
      } else {
        v_.local_diag = diag;
      }
      break;
    case Hold::AdminDown: {
      // §6.8.16 admin disable (SM-18, ADM-01): diag 7 unless told otherwise (5).
      const std::uint8_t d = diag != 0 ? diag : kDiagAdminDown;
      if (old_state != State::AdminDown) {
        enter_state(State::AdminDown, d, "administratively down", now, fx);
      } else {
        v_.local_diag = d;
      }
      break;
    }
  }
  // SM-21: a change of state, diag or hold goes out at once.
  const bool changed =
      v_.session_state != old_state || v_.local_diag != old_diag || v_.hold != old_hold;
  finish(fx, now, changed, false);
  return fx;
}

Effects Session::set_params(const SessionParams& params, TimePoint now) {
  Effects fx;
  // Interval changes go through sync_timers() (Poll, TMR-05..07); Detect Mult
  // applies at once without a Poll (TMR-10) and rides on the next packet.
  params_ = sanitized(params);
  finish(fx, now, false, false);
  return fx;
}

void Session::defer_first_packet(TimePoint at) {
  if (counters_.tx_packets != 0 || v_.last_periodic_tx || v_.next_tx == TimePoint::max()) return;
  v_.next_tx = std::max(v_.next_tx, at);
}

void Session::count_drop(wire::DropReason r) {
  const auto i = static_cast<std::size_t>(r);
  if (i < counters_.drops.size()) ++counters_.drops[i];
}

wire::ControlPacket Session::current_packet() const {
  wire::ControlPacket p = build_packet(false);
  if (auth_) auth::peek(*auth_, v_.xmit_auth, p);
  return p;
}

wire::ControlPacket Session::next_packet() {
  return build_sent_packet(false);
}

// §6.8.6 steps 10-12 (PKT-21..23), §6.7.
wire::DropReason Session::check_auth(const wire::ControlPacket& pkt,
                                     std::span<const std::uint8_t> raw, TimePoint now) const {
  if (pkt.auth_present && !auth_) {
    return wire::DropReason::AuthPresentNotConfigured;  // step 10, PKT-21
  }
  if (!pkt.auth_present && auth_) {
    return wire::DropReason::AuthMissing;  // step 11, PKT-22, AUTH-04/08
  }
  if (!auth_) return wire::DropReason::None;
  // AUTH-11 (§6.8.1): bfd.AuthSeqKnown returns to 0 after twice the
  // detection time without a verified packet, so a peer that restarted with
  // a new random sequence number is accepted again. Counted from verified
  // packets only: the restarted peer's own (rejected) packets must not keep
  // the old window alive. Read here, written on acceptance only (PKT-11).
  bool known = v_.auth_seq_known;
  const Duration dt = detection_time();
  if (known && v_.last_auth_rx && dt > Duration{0} && now - *v_.last_auth_rx >= dt * 2) {
    known = false;
  }
  return auth::verify(*auth_, known, v_.rcv_auth_seq, pkt, raw);  // step 12, PKT-23
}

void Session::set_auth(std::shared_ptr<const auth::KeyRing> keys) {
  const wire::AuthType before = auth_type();
  auth_ = std::move(keys);
  if (auth_type() != before) {
    // A different type: nothing heard so far was verified under it.
    v_.auth_seq_known = false;
    v_.rcv_auth_seq = 0;
    v_.last_auth_rx.reset();
    v_.xmit_auth.sent_any = false;
  }
}

const auth::KeyRing* Session::auth_keys() const {
  return auth_.get();
}
wire::AuthType Session::auth_type() const {
  return auth_ ? auth_->type() : wire::AuthType::None;
}
bool Session::auth_seq_known() const {
  return v_.auth_seq_known;
}
std::uint32_t Session::rcv_auth_seq() const {
  return v_.rcv_auth_seq;
}
std::uint32_t Session::xmit_auth_seq() const {
  return v_.xmit_auth.seq;
}

TimePoint Session::next_deadline() const {
  return std::min({v_.next_tx, v_.detect_at, v_.remote_expire_at, v_.poll_start_at});
}

// ------------------------------------------------------------------ accessors

std::uint32_t Session::local_discr() const {
  return v_.local_discr;
}
std::uint32_t Session::remote_discr() const {
  return v_.remote_discr;
}
State Session::state() const {
  return v_.session_state;
}
State Session::remote_state() const {
  return v_.remote_session_state;
}
std::uint8_t Session::local_diag() const {
  return v_.local_diag;
}
std::uint8_t Session::remote_diag() const {
  return v_.remote_diag;
}
Hold Session::hold() const {
  return v_.hold;
}
const SessionParams& Session::params() const {
  return params_;
}
bool Session::remote_demand() const {
  return v_.remote_demand;
}
bool Session::poll_active() const {
  return v_.poll_active;
}
Duration Session::tx_interval() const {
  return can_send_periodic() ? periodic_interval() : Duration{0};
}
Duration Session::detection_time() const {
  if (v_.remote_detect_mult == 0) return Duration{0};
  // TMR-09: received Detect Mult x max(RequiredMinRx in use, last received
  // Desired Min TX). PKT-33: a peer advertising 0 falls back to our rx; if
  // both are 0 use 1 s rather than a zero detection time. 64-bit (CI-02).
  Duration per = std::max(v_.effective_rx, v_.remote_desired_min_tx);
  if (per <= Duration{0}) per = kOneSecond;
  return per * static_cast<std::int64_t>(v_.remote_detect_mult);
}
Duration Session::remote_min_rx() const {
  return v_.remote_min_rx;
}
Duration Session::remote_desired_min_tx() const {
  return v_.remote_desired_min_tx;
}
std::uint8_t Session::remote_detect_mult() const {
  return v_.remote_detect_mult;
}
std::optional<TimePoint> Session::last_rx() const {
  return v_.last_rx;
}
TimePoint Session::last_state_change() const {
  return v_.last_change;
}
const SessionCounters& Session::counters() const {
  return counters_;
}
Duration Session::effective_desired_min_tx() const {
  return v_.effective_tx;
}
Duration Session::effective_required_min_rx() const {
  return v_.effective_rx;
}
bool Session::poll_queued() const {
  return v_.poll_pending || target_desired_min_tx() != v_.desired_min_tx ||
         params_.required_min_rx != v_.required_min_rx;
}

// -------------------------------------------------------------------- helpers

bool Session::can_send_any() const {
  // §6.8.7, TMR-16, DIS-06: a passive session is silent until it hears the peer.
  return !(params_.passive && v_.remote_discr == 0);
}

bool Session::remote_demand_active() const {
  // §6.6: Demand is active on the remote system.
  return v_.remote_demand && v_.session_state == State::Up && v_.remote_session_state == State::Up;
}

bool Session::can_send_periodic() const {
  // §6.8.7: no periodic tx if RemoteMinRx is 0 (TMR-15) or the peer is in
  // Demand (DE-03) -- except that a Poll then goes out at the tx rate (§6.5).
  return can_send_any() && v_.remote_min_rx > Duration{0} &&
         (!remote_demand_active() || v_.poll_active);
}

Duration Session::periodic_interval() const {
  return std::max(v_.effective_tx, v_.remote_min_rx);  // §6.8.7, TMR-01
}

Duration Session::target_desired_min_tx() const {
  // §6.8.3 (TMR-04, CI-04): at least exactly 1 s whenever not Up.
  if (v_.session_state != State::Up) return std::max(params_.desired_min_tx, kOneSecond);
  return params_.desired_min_tx;
}

Duration Session::max_gap(Duration interval) const {
  // The upper bound of jittered(): 100 %, or 90 % when our Detect Mult is 1.
  const std::int64_t us = std::max<std::int64_t>(interval.count(), 1);
  return Duration{params_.detect_mult == 1 ? us * 90 / 100 : us};
}

Duration Session::min_gap(Duration interval) const {
  // The lower bound of jittered(): ceil(75 %), plus the slack by which the
  // packet may be sent before its deadline and the delay a batching
  // transport may add, but never above the upper bound.
  const std::int64_t us = std::max<std::int64_t>(interval.count(), 1);
  return std::min(Duration{(us * 75 + 99) / 100} + params_.tx_slack + params_.tx_delay,
                  max_gap(interval));
}

Duration Session::jittered(Duration interval) {
  // §6.8.7 (TMR-02/03): uniform in [75 %, 100 %], or [75 %, 90 %] when our
  // Detect Mult is 1. splitmix64: small, seeded, no heap state.
  v_.rng += 0x9E3779B97F4A7C15ULL;
  std::uint64_t z = v_.rng;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  z ^= z >> 31;
  const std::int64_t lo = min_gap(interval).count();
  const std::int64_t hi = max_gap(interval).count();  // >= lo: min_gap is capped by it
  const auto span = static_cast<std::uint64_t>(hi - lo + 1);
  return Duration{lo + static_cast<std::int64_t>(z % span)};
}

wire::ControlPacket Session::build_packet(bool final) const {
  // §6.8.7 (PKT-01..09). Never P and F together (PKT-03): a Final carries P = 0
  // and our Poll continues on the next packet.
  wire::ControlPacket p;
  p.version = 1;
  p.diag = v_.local_diag;
  p.state = v_.session_state;
  p.poll = v_.poll_active && !final;
  p.final = final;
  p.detect_mult = params_.detect_mult;
  p.my_discriminator = v_.local_discr;
  p.your_discriminator = v_.remote_discr;
  p.desired_min_tx_us = to_wire_us(v_.desired_min_tx);
  p.required_min_rx_us = to_wire_us(v_.required_min_rx);
  p.required_min_echo_rx_us = 0;
  return p;
}

wire::ControlPacket Session::build_sent_packet(bool final) {
  wire::ControlPacket p = build_packet(final);
  // PKT-04: A = 1 exactly when the session uses authentication.
  if (auth_) auth::stamp(*auth_, v_.xmit_auth, p);
  return p;
}

void Session::enter_state(State next, int diag, std::string_view reason, TimePoint now, Effects& fx,
                          FlapCause cause) {
  const State old = v_.session_state;
  if (diag >= 0) v_.local_diag = static_cast<std::uint8_t>(diag);  // SM-24
  v_.session_state = next;
  v_.last_change = now;
  ++counters_.state_changes;
  if (next == State::Up) ++counters_.up_count;
  ++counters_.transitions[idx(old)][idx(next)];
  if (old == State::Up) {
    ++counters_.down_count;
    ++counters_.flaps[static_cast<std::size_t>(cause)];
  }
  fx.change =
      StateChange{old, next, v_.local_diag, v_.remote_session_state, v_.remote_diag, reason};
}

bool Session::run_fsm(FsmEvent event, TimePoint now, Effects& fx) {
  const FsmTransition t = fsm_transition(v_.session_state, event);
  if (t.next == v_.session_state) return false;
  // SM-22: while held Down, never advance to Init or Up; keep sending Down.
  if (v_.hold == Hold::Down && (t.next == State::Init || t.next == State::Up)) return false;
  // Leaving Up through the table is the peer's doing or a timeout; holds
  // take the set_hold() path (FlapCause::LocalHold).
  FlapCause cause = FlapCause::Timeout;
  if (event == FsmEvent::RxDown) cause = FlapCause::PeerDown;
  if (event == FsmEvent::RxAdminDown) cause = FlapCause::PeerAdminDown;
  enter_state(t.next, t.diag, t.reason, now, fx, cause);
  return true;
}

namespace {
// A bound on the round trip for TMR-14; BFD paths are far faster than this.
constexpr Duration kPollRttGuard{100'000};
}  // namespace

bool Session::poll_guard_met(TimePoint now) const {
  // TMR-14 (§6.8.3): after a Poll ends, wait for a packet without F (not
  // possible towards a Demand peer) and for one RTT bound -- min(tx interval,
  // 100 ms) -- after our last P, so a late or duplicated F for the old Poll
  // cannot end the new one.
  if (!v_.non_final_since_poll && !remote_demand_active()) return false;
  return !v_.last_poll_tx || now - *v_.last_poll_tx >= poll_guard();
}

TimePoint Session::poll_timeout_at() const {
  // Three packets at the slow rate of a session that is not Up (TMR-04).
  return v_.poll_started_at + std::max(detection_time(), kOneSecond * 3);
}

Duration Session::poll_guard() const {
  return std::min(periodic_interval(), kPollRttGuard);
}

void Session::sync_timers(TimePoint now) {
  // A Poll no one answers while not Up (the peer is absent or Down) ends
  // after a detection time, at least 3 s (three slow-rate packets): a change queued
  // behind it must not wait for a Final that will never come. While Up an
  // unanswered Poll ends with the session (detection) instead.
  if (v_.poll_active && v_.session_state != State::Up && now >= poll_timeout_at()) {
    v_.poll_active = false;
    // Not Up, advertised values are in use at once (as for a change made
    // while not Up): nothing stays deferred behind the ended Poll.
    v_.effective_tx = v_.desired_min_tx;
    v_.effective_rx = v_.required_min_rx;
  }
  const Duration tx = target_desired_min_tx();
  const Duration rx = params_.required_min_rx;
  const bool changed = tx != v_.desired_min_tx || rx != v_.required_min_rx;
  if (changed && v_.session_state != State::Up) {
    // Not Up: advertise at once (§6.8.3: >= 1 s whenever not Up) and use at
    // once (deferral applies only "and bfd.SessionState is Up"), then Poll
    // (TMR-05). Not while a Poll is running: a Final for it would seem to
    // confirm values it never carried (§6.8.3 leaves that ambiguous), so the
    // change waits until that Poll has completed or timed out.
    if (!v_.poll_active) {
      v_.desired_min_tx = v_.effective_tx = tx;
      v_.required_min_rx = v_.effective_rx = rx;
      v_.poll_pending = true;
    } else if (v_.desired_min_tx < kOneSecond) {
      // Except the 1 s floor of TMR-04, which is a MUST the moment the
      // session leaves Up, Poll or not.
      v_.desired_min_tx = v_.effective_tx = std::max(v_.desired_min_tx, kOneSecond);
    }
  } else if (changed && !v_.poll_active && poll_guard_met(now)) {
    // Up: one Poll at a time, queued changes merged (TMR-14). TMR-10: a lower
    // tx / higher rx applies at once; TMR-06/07: a higher tx / lower rx waits
    // for the Final.
    v_.desired_min_tx = tx;
    v_.required_min_rx = rx;
    v_.effective_tx = std::min(v_.effective_tx, tx);
    v_.effective_rx = std::max(v_.effective_rx, rx);
    v_.poll_pending = true;
  }
  if (v_.poll_pending && !v_.poll_active && poll_guard_met(now)) {
    v_.poll_pending = false;
    v_.poll_active = true;  // TMR-05
    v_.poll_started_at = now;
    ++counters_.polls_started;
  }
}

void Session::update_timers(TimePoint now) {
  // TMR-09 / PKT-30: detection counts from the last accepted packet.
  const Duration dt = detection_time();
  const bool detecting = v_.session_state == State::Init || v_.session_state == State::Up;
  if (v_.last_rx && dt > Duration{0}) {
    v_.detect_at = detecting ? *v_.last_rx + dt : TimePoint::max();
    v_.remote_expire_at = v_.remote_known ? *v_.last_rx + dt : TimePoint::max();
  } else {
    v_.detect_at = TimePoint::max();
    v_.remote_expire_at = TimePoint::max();
  }
  // A queued Poll waiting only for the TMR-14 guard gets a deadline of its own.
  v_.poll_start_at = TimePoint::max();
  if (!v_.poll_active && poll_queued() && v_.last_poll_tx &&
      (v_.non_final_since_poll || remote_demand_active())) {
    v_.poll_start_at = std::max(*v_.last_poll_tx + poll_guard(), now);
  }
  // TMR-01 / TMR-08: a new interval re-bases the schedule on the last periodic
  // packet, so a faster rate applies at once (and is due now if it elapsed).
  const Duration iv = can_send_periodic() ? periodic_interval() : Duration{0};
  if (iv == Duration{0}) {
    v_.next_tx = TimePoint::max();
    v_.sched_interval = Duration{0};
  } else if (iv != v_.sched_interval) {
    v_.sched_interval = iv;
    v_.next_tx = v_.last_periodic_tx ? *v_.last_periodic_tx + jittered(iv) : now;
    // Already elapsed: send now, and count the following slots from now.
    v_.next_tx = std::max(v_.next_tx, now);
  }
}

void Session::finish(Effects& fx, TimePoint now, bool immediate, bool final) {
  sync_timers(now);
  update_timers(now);
  const bool due = v_.next_tx <= now + params_.tx_slack;
  if (!can_send_any() || !(immediate || final || due)) return;
  fx.send = build_sent_packet(final);
  if (fx.send->poll) v_.last_poll_tx = now;
  ++counters_.tx_packets;
  if (final) ++counters_.finals_sent;
  if (v_.sched_interval <= Duration{0}) return;  // not sending periodically
  if (due) {
    // TMR-20: the next slot counts from the previous deadline (no drift), but
    // resynchronise to now after falling more than one interval behind. A
    // packet served early (within tx_slack of its deadline) counts from when
    // it really left: counted from its deadline, the next gap could exceed
    // 100 % of the interval by the slack.
    fx.periodic = true;
    counters_.tx_lateness.observe(now - v_.next_tx);
    TimePoint base = std::min(v_.next_tx, now);
    if (now - base > v_.sched_interval) base = now;
    v_.last_periodic_tx = now;
    // §6.8.7: never two periodic packets closer than 75 % of the interval, as
    // sent: after a late wake-up the slot counted from the missed deadline
    // may fall short of that, so it is pushed out to the minimum gap.
    v_.next_tx = std::max(base + jittered(v_.sched_interval), now + min_gap(v_.sched_interval));
  } else if (!final) {
    // The one packet announcing a change (SM-21) went out off the schedule:
    // the next periodic one counts from it, not from the old slot, so no two
    // packets (Finals aside, TMR-12) are closer than 75 % of the interval.
    v_.last_periodic_tx = now;
    v_.next_tx = now + jittered(v_.sched_interval);
  }
}

}  // namespace beacon::core
