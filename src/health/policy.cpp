// CheckPolicy (rise/fall hysteresis) and decide() (group verdict). Pure: no
// I/O, no clock. See policy.hpp for the contract.
//
// Hysteresis follows dnsdist's submitHealthCheckResult: the stable state only
// moves after `rise` consecutive results towards Pass or `fall` consecutive
// results towards Fail/Maintenance; the first result sets the state directly.
#include "beacon/health/policy.hpp"

#include <algorithm>

namespace beacon::health {
namespace {

constexpr std::uint8_t kDiagAdminDown = 7;  // RFC 5880 §4.1 "Administratively Down"

std::uint8_t diag_for(core::Hold hold, std::uint8_t group_diag) {
  return hold == core::Hold::AdminDown ? kDiagAdminDown : group_diag;
}

std::string check_reason(const std::string& name, const CheckPolicy& p) {
  std::string text = "check " + name;
  if (!p.reason().empty()) text += ": " + p.reason();
  return text;
}

}  // namespace

CheckPolicy::CheckPolicy(std::uint32_t rise, std::uint32_t fall)
    : rise_(std::max<std::uint32_t>(rise, 1)), fall_(std::max<std::uint32_t>(fall, 1)) {}

bool CheckPolicy::feed(const Result& r) {
  last_ = r;
  if (!known_) {
    // The first result after start sets the state directly: start-up neither
    // flaps nor waits `rise` intervals.
    known_ = true;
    state_ = r.status;
    reason_ = r.reason;
    streak_ = 0;
    return true;
  }
  if (r.status == state_) {
    streak_ = 0;
    reason_ = r.reason;  // keep the freshest text for the state we are in
    return false;
  }
  // A disagreeing result. A streak only counts results towards one target:
  // Pass,Fail,Maintenance... restarts the count when the target changes.
  if (streak_ == 0 || streak_target_ != r.status) {
    streak_target_ = r.status;
    streak_ = 0;
  }
  ++streak_;
  // Towards Pass uses rise; towards Fail or Maintenance (leaving service)
  // uses fall. Event-driven checks get rise = fall = 1 from the loader.
  const std::uint32_t needed = r.status == Status::Pass ? rise_ : fall_;
  if (streak_ < needed) return false;
  state_ = r.status;
  reason_ = r.reason;
  streak_ = 0;
  return true;
}

bool CheckPolicy::force(const Result& r) {
  const bool changed = !known_ || state_ != r.status;
  last_ = r;
  known_ = true;
  state_ = r.status;
  reason_ = r.reason;
  streak_ = 0;
  return changed;
}

bool CheckPolicy::known() const {
  return known_;
}
Status CheckPolicy::state() const {
  return state_;
}
bool CheckPolicy::in_transition() const {
  return known_ && last_.status != state_;
}
const Result& CheckPolicy::last() const {
  return last_;
}
const std::string& CheckPolicy::reason() const {
  return reason_;
}
std::uint32_t CheckPolicy::rise() const {
  return rise_;
}
std::uint32_t CheckPolicy::fall() const {
  return fall_;
}

std::string_view verdict_name(Verdict v) {
  switch (v) {
    case Verdict::Unknown:
      return "unknown";
    case Verdict::Healthy:
      return "healthy";
    case Verdict::Unhealthy:
      return "unhealthy";
    case Verdict::Maintenance:
      return "maintenance";
  }
  return "unknown";
}

GroupDecision decide(const config::GroupSpec& group,
                     const std::vector<std::pair<std::string, const CheckPolicy*>>& checks) {
  GroupDecision d;
  // Start-up order: no verdict (and so no Up) until every check has spoken.
  for (const auto& [name, policy] : checks) {
    if (policy == nullptr || !policy->known()) {
      d.verdict = Verdict::Unknown;
      d.hold = core::Hold::Down;
      d.diag = group.diag;
      d.reason = "waiting for first health verdict";
      return d;
    }
  }
  std::string maint, failing;
  for (const auto& [name, policy] : checks) {
    std::string* list = policy->state() == Status::Maintenance ? &maint
                        : policy->state() == Status::Fail      ? &failing
                                                               : nullptr;
    if (list == nullptr) continue;
    if (!list->empty()) *list += "; ";
    *list += check_reason(name, *policy);
  }
  if (!maint.empty()) {
    // Maintenance wins over Unhealthy: it is the operator's stated intent and
    // the verdict shown. The hold, however, never gets weaker because of it:
    // if a check also fails and the unhealthy signal is Down while the
    // maintenance signal is AdminDown (which some routers ignore, RFC 5882
    // §3.2), the box is held Down so a broken LB never keeps its route.
    d.verdict = Verdict::Maintenance;
    d.hold = group.maintenance_signal;
    d.reason = "maintenance: " + maint;
    if (!failing.empty()) {
      d.failing = true;
      d.reason += "; also failing: " + failing;
      if (group.unhealthy_signal == core::Hold::Down) d.hold = core::Hold::Down;
    }
    d.diag = diag_for(d.hold, group.diag);
    return d;
  }
  if (!failing.empty()) {
    d.verdict = Verdict::Unhealthy;
    d.failing = true;
    d.hold = group.unhealthy_signal;
    d.diag = diag_for(d.hold, group.diag);
    d.reason = failing;
    return d;
  }
  d.verdict = Verdict::Healthy;
  d.hold = core::Hold::None;
  d.diag = 0;
  d.reason = "healthy";
  return d;
}

}  // namespace beacon::health
