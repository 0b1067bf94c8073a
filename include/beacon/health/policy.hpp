// Check hysteresis and group verdicts. Pure: no I/O, no clock.
//
// CheckPolicy turns a stream of probe results into a stable state with
// rise/fall counts; the first result after start sets the state directly (so
// start-up neither flaps nor waits). GroupPolicy combines the states of a
// group's checks into one verdict and the hold the engine should apply.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "beacon/config/config.hpp"
#include "beacon/core/session.hpp"
#include "beacon/health/probe.hpp"

namespace beacon::health {

class CheckPolicy {
 public:
  CheckPolicy(std::uint32_t rise, std::uint32_t fall);

  // Feeds one result; returns true if the stable state changed.
  bool feed(const Result& r);

  bool known() const;               // at least one result seen
  Status state() const;             // stable state (Fail until known)
  bool in_transition() const;       // latest raw result disagrees with the stable state
  const Result& last() const;       // latest raw result
  const std::string& reason() const;  // reason of the result that set the stable state

 private:
  std::uint32_t rise_, fall_;
  bool known_ = false;
  Status state_ = Status::Fail;
  std::uint32_t streak_ = 0;  // consecutive raw results disagreeing with state_
  Result last_{};
  std::string reason_;
};

enum class Verdict : std::uint8_t { Unknown, Healthy, Unhealthy, Maintenance };
std::string_view verdict_name(Verdict v);

struct GroupDecision {
  Verdict verdict = Verdict::Unknown;
  core::Hold hold = core::Hold::Down;  // what the engine applies (HoldSource::Health)
  std::uint8_t diag = 5;
  std::string reason;                  // "check haproxy-proc: process 1234 exited"
};

// Combines check states for one group: Unknown until every check has a
// result (start-up order: no Up before the first verdict); Maintenance if any
// check reports maintenance; Unhealthy if any fails; else Healthy.
GroupDecision decide(const config::GroupSpec& group,
                     const std::vector<std::pair<std::string, const CheckPolicy*>>& checks);

}  // namespace beacon::health
