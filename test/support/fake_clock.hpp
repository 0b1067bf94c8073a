// FakeClock: a beacon::core::Clock that only moves when a test says so.
//
// Starts at an arbitrary nonzero instant (so `TimePoint{}` never looks like a
// real time). advance() moves forward and then runs the optional hook, which
// an engine test can use to fire the deadlines that fell due.
#pragma once

#include <functional>
#include <utility>

#include "beacon/core/time.hpp"

namespace beacon::test {

class FakeClock final : public core::Clock {
 public:
  static constexpr core::TimePoint kStart = core::TimePoint{} + core::Duration{1'000'000'000};

  explicit FakeClock(core::TimePoint start = kStart) : now_(start) {}

  core::TimePoint now() const override { return now_; }

  // Moves forward by `d` (never backwards: negative durations are ignored).
  void advance(core::Duration d) {
    if (d > core::Duration{0}) now_ += d;
    if (on_advance_) on_advance_();
  }

  // Jumps to `t` if it lies in the future (steady clocks never go back).
  void advance_to(core::TimePoint t) {
    if (t > now_) now_ = t;
    if (on_advance_) on_advance_();
  }

  void set_on_advance(std::function<void()> hook) { on_advance_ = std::move(hook); }

 private:
  core::TimePoint now_;
  std::function<void()> on_advance_;
};

}  // namespace beacon::test
