// Time types shared by the pure core and the engine.
//
// The core never reads a clock: every entry point takes `now`. Durations are
// microseconds (the unit BFD uses on the wire); TimePoint is a steady-clock
// instant with microsecond resolution. Tests build TimePoints as
// `TimePoint{} + Duration{...}`.
#pragma once

#include <chrono>
#include <cstdint>

namespace beacon::core {

using Duration = std::chrono::microseconds;
using TimePoint = std::chrono::time_point<std::chrono::steady_clock, Duration>;

inline constexpr Duration kOneSecond{1'000'000};

// Converts a wire interval (microseconds, u32) to a Duration.
constexpr Duration from_wire_us(std::uint32_t us) {
  return Duration{us};
}

// Clock seam: the engine owns one; production uses SteadyClock, tests a fake.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint now() const = 0;
};

class SteadyClock final : public Clock {
 public:
  TimePoint now() const override {
    return std::chrono::time_point_cast<Duration>(std::chrono::steady_clock::now());
  }
};

}  // namespace beacon::core
