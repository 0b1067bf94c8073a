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

// Stable state of one check. Moving towards Pass needs `rise` consecutive
// Pass results; moving towards Fail or Maintenance (leaving service) needs
// `fall` consecutive results of that status (a streak restarts when the
// target changes). The first result ever sets the state directly. rise/fall
// of 0 are treated as 1.
class CheckPolicy {
 public:
  CheckPolicy(std::uint32_t rise, std::uint32_t fall);

  // Feeds one result; returns true if the stable state changed (the first
  // result always counts as a change).
  bool feed(const Result& r);
  // Sets the stable state to r.status at once, bypassing rise/fall (a probe
  // that raised an exception has no result to count: it must not keep
  // passing). Returns true if the stable state changed.
  bool force(const Result& r);

  bool known() const;          // at least one result seen
  Status state() const;        // stable state (Fail until known)
  bool in_transition() const;  // latest raw result disagrees with the stable state
  const Result& last() const;  // latest raw result
  // Reason of the latest result agreeing with the stable state (the one that
  // set it, or a fresher one with the same status).
  const std::string& reason() const;
  std::uint32_t rise() const;
  std::uint32_t fall() const;

 private:
  std::uint32_t rise_, fall_;
  bool known_ = false;
  Status state_ = Status::Fail;
  std::uint32_t streak_ = 0;             // consecutive raw results towards streak_target_
  Status streak_target_ = Status::Fail;  // meaningful while streak_ > 0
  Result last_{};
  std::string reason_;
};

enum class Verdict : std::uint8_t { Unknown, Healthy, Unhealthy, Maintenance };
std::string_view verdict_name(Verdict v);

struct GroupDecision {
  Verdict verdict = Verdict::Unknown;
  core::Hold hold = core::Hold::Down;  // what the engine applies (HoldSource::Health)
  std::uint8_t diag = 5;
  std::string reason;  // "check haproxy-proc: process 1234 exited"
  // A check fails (Unhealthy, or Maintenance with a failing check as well):
  // lets each session apply the Maintenance-and-failing rule with its own
  // signals (engine::HoldCause).
  bool failing = false;
};

// Combines check states for one group (`checks` in the group's order; a null
// policy means "no such check" and counts as not known):
//  - Unknown until every check has a result (start-up order: no Up before the
//    first verdict): hold Down, group.diag, "waiting for first health verdict".
//  - Maintenance if any check is in maintenance: hold group.maintenance_signal,
//    reason "maintenance: check maint: <reason>". Maintenance wins over
//    Unhealthy (operator intent), but if a check also fails and
//    unhealthy_signal is Down, the hold is Down, never the weaker AdminDown.
//  - Unhealthy if any check fails: hold group.unhealthy_signal, reason names
//    every failing check in group order: "check haproxy: HTTP 503".
//  - Healthy otherwise: Hold::None, diag 0, reason "healthy".
// diag: 7 (Administratively Down) with AdminDown, else group.diag.
GroupDecision decide(const config::GroupSpec& group,
                     const std::vector<std::pair<std::string, const CheckPolicy*>>& checks);

}  // namespace beacon::health
