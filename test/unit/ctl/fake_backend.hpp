// Test double for ctl::Backend: canned sessions/stats, records set_hold calls.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include "beacon/ctl/backend.hpp"

namespace beacon::ctl::testing {

struct HoldCall {
  engine::HoldSource source;
  engine::Selector selector;
  core::Hold hold;
  std::uint8_t diag;
};

class FakeBackend : public Backend {
 public:
  std::vector<engine::SessionSnapshot> sessions() override {
    if (throw_) throw std::runtime_error("backend exploded");
    return sessions_;
  }
  engine::EngineStats stats() override { return stats_; }
  engine::HoldResult set_hold(engine::HoldSource source, const engine::Selector& sel,
                              core::Hold hold, std::uint8_t diag) override {
    calls_.push_back({source, sel, hold, diag});
    engine::HoldResult r;
    r.error = hold_error_;
    r.matched = hold_error_.empty() ? matched_ : 0;
    return r;
  }

  std::vector<engine::SessionSnapshot> sessions_;
  engine::EngineStats stats_{};
  std::vector<HoldCall> calls_;
  std::size_t matched_ = 2;
  std::string hold_error_;
  bool throw_ = false;
};

inline engine::SessionSnapshot sample_session() {
  engine::SessionSnapshot s;
  s.peer = "198.18.0.1";
  s.local = "198.18.0.2";
  s.interface = "veth0";
  s.group = "web";
  s.source_port = 49152;
  s.state = core::wire::State::Up;
  s.remote_state = core::wire::State::Up;
  s.local_diag = 0;
  s.remote_diag = 3;
  s.local_discr = 11;
  s.remote_discr = 22;
  s.hold = core::Hold::Down;
  s.hold_source = engine::HoldSource::Admin;
  s.params.desired_min_tx = core::Duration{50'000};
  s.params.required_min_rx = core::Duration{100'000};
  s.params.detect_mult = 3;
  s.tx_interval = core::Duration{50'000};
  s.detection_time = core::Duration{300'000};
  s.remote_min_rx = core::Duration{100'000};
  s.remote_desired_min_tx = core::Duration{100'000};
  s.remote_detect_mult = 3;
  s.counters.rx_packets = 7;
  s.counters.tx_packets = 9;
  s.since_change = core::Duration{125'500'000};
  return s;
}

}  // namespace beacon::ctl::testing
