// Helpers for driving one beacon::core::Session against a scripted peer with
// a FakeClock: build peer packets, run deadlines, record what was sent.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "beacon/core/session.hpp"
#include "fake_clock.hpp"

namespace beacon::test {

// Milliseconds as a core::Duration (microseconds), for readable test timings.
constexpr core::Duration ms(std::int64_t v) {
  return core::Duration{v * 1000};
}

inline core::SessionParams params(core::Duration tx, core::Duration rx, std::uint8_t dm = 3,
                                  bool passive = false) {
  return core::SessionParams{tx, rx, dm, passive};
}

inline constexpr std::uint32_t kLocalDiscr = 0x1111'0001;
inline constexpr std::uint32_t kPeerDiscr = 0x2222'0002;

// A packet the scripted peer sends. Defaults: YD = our discriminator, 50 ms /
// 50 ms, Detect Mult 3, no flags.
struct PeerPacket {
  core::wire::State state = core::wire::State::Down;
  std::uint8_t diag = 0;
  bool poll = false;
  bool final = false;
  bool demand = false;
  std::uint8_t detect_mult = 3;
  std::uint32_t my_discr = kPeerDiscr;
  std::uint32_t your_discr = kLocalDiscr;
  std::uint32_t desired_min_tx_us = 50'000;
  std::uint32_t required_min_rx_us = 50'000;

  core::wire::ControlPacket build() const {
    core::wire::ControlPacket p;
    p.version = 1;
    p.diag = diag;
    p.state = state;
    p.poll = poll;
    p.final = final;
    p.demand = demand;
    p.detect_mult = detect_mult;
    p.length = 24;
    p.my_discriminator = my_discr;
    p.your_discriminator = your_discr;
    p.desired_min_tx_us = desired_min_tx_us;
    p.required_min_rx_us = required_min_rx_us;
    return p;
  }
};

inline PeerPacket peer(core::wire::State s) {
  PeerPacket p;
  p.state = s;
  return p;
}

struct SentPacket {
  core::TimePoint at;
  core::wire::ControlPacket pkt;
  bool periodic = false;
};

// One session + clock + log of everything sent and every state change.
class SessionDriver {
 public:
  explicit SessionDriver(core::SessionParams params = {}, std::uint64_t seed = 42)
      : session_(kLocalDiscr, params, clock_.now(), seed) {}

  core::Session& s() { return session_; }
  FakeClock& clock() { return clock_; }
  core::TimePoint now() const { return clock_.now(); }
  std::vector<SentPacket>& sent() { return sent_; }
  std::vector<core::StateChange>& changes() { return changes_; }

  core::Effects record(core::Effects fx) {
    if (fx.send) sent_.push_back({clock_.now(), *fx.send, fx.periodic});
    if (fx.change) changes_.push_back(*fx.change);
    return fx;
  }

  core::Effects rx(const PeerPacket& p) {
    return record(session_.receive(p.build(), clock_.now()));
  }
  core::Effects rx(const core::wire::ControlPacket& p) {
    return record(session_.receive(p, clock_.now()));
  }
  core::Effects hold(core::Hold h, std::uint8_t diag = 0) {
    return record(session_.set_hold(h, diag, clock_.now()));
  }
  core::Effects set_params(const core::SessionParams& p) {
    return record(session_.set_params(p, clock_.now()));
  }

  // Runs every deadline up to and including `t`, then sets the clock to `t`.
  // Bounded: stops after `max_steps` expirations.
  void run_until(core::TimePoint t, int max_steps = 1'000'000) {
    for (int i = 0; i < max_steps; ++i) {
      const core::TimePoint d = session_.next_deadline();
      if (d > t) break;
      clock_.advance_to(d);
      record(session_.expire(clock_.now()));
    }
    clock_.advance_to(t);
  }
  void run_for(core::Duration d) { run_until(clock_.now() + d); }

  // Brings the session to Up through the three-way handshake (peer Down, then
  // peer Up), answers our Poll so the fast timers are in force, and lets one
  // tx interval pass (a new Poll may only start then, TMR-14) with the peer
  // refreshing detection at the end.
  void bring_up(PeerPacket base = {}) {
    base.state = core::wire::State::Down;
    rx(base);
    base.state = core::wire::State::Up;
    rx(base);
    finish_poll(base);
    run_for(session_.tx_interval());
    base.final = false;
    rx(base);
  }

  // Replies F to a running Poll, then sends a plain packet (TMR-14 guard).
  void finish_poll(PeerPacket base) {
    base.state = session_.state() == core::wire::State::Up ? core::wire::State::Up : base.state;
    if (session_.poll_active()) {
      base.final = true;
      rx(base);
      base.final = false;
      rx(base);
    }
  }

  std::vector<SentPacket> periodic_since(core::TimePoint t) const {
    std::vector<SentPacket> out;
    for (const auto& p : sent_)
      if (p.periodic && p.at >= t) out.push_back(p);
    return out;
  }

 private:
  FakeClock clock_;
  core::Session session_;
  std::vector<SentPacket> sent_;
  std::vector<core::StateChange> changes_;
};

}  // namespace beacon::test
