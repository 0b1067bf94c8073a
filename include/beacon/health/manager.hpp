// HealthManager: runs on the ops loop. Owns one probe + CheckPolicy per
// [[check]], schedules polled probes (interval, fast_interval while in
// transition), subscribes event-driven ones, and whenever a group's decision
// changes hands it to the sink (the engine: HoldSource::Health, group
// selector). It also calls heartbeat() every health.heartbeat_interval so the
// engine's fail-safe knows verdicts are still flowing.
//
// Threads: everything (constructor, start, stop, checks, groups, the sink
// callbacks and every probe callback) runs on the ops loop's thread; the
// destructor may also run after that loop has stopped. Nothing here blocks.
//
// Scheduling of a polled check: the first run starts at start(); the next
// starts `interval` after the previous one started (fast_interval while the
// check is not yet known or its policy is in transition), but never while the
// previous run is still outstanding. A run still outstanding 2 * timeout +
// 200 ms after it started is a probe bug; each tick it stays stuck feeds a
// Fail ("probe did not complete ...") so a check that cannot run counts as
// failing, never as passing. Event-driven checks are watched once at start.
//
// Faults: an exception from a probe (thrown by run()/watch() or escaping any
// handler on the check's executor, the check's own timer included) makes that
// check Fail at once with reason "probe error: <what>", bypassing fall; the
// probe is destroyed and rebuilt by the factory after a back-off (1 s,
// doubling to 30 s while it keeps faulting, reset by the next result). Other
// checks, the groups they feed and the loop are not affected.
#pragma once

#include <spdlog/logger.h>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "beacon/config/config.hpp"
#include "beacon/core/histogram.hpp"
#include "beacon/health/policy.hpp"

namespace beacon::health {

struct Sink {
  // Called on the ops loop when a group's decision changes (and once per group
  // at its first verdict).
  std::function<void(const std::string& group, const GroupDecision&)> apply;
  // Called every heartbeat_interval while the ops loop is alive.
  std::function<void()> heartbeat;
};

struct CheckStatus {
  std::string name, type;
  Status state = Status::Fail;  // stable state (after rise/fall)
  bool known = false;
  bool in_transition = false;
  std::string reason;                 // reason behind the stable state
  Status last_status = Status::Fail;  // latest raw result
  std::string last_reason;
  core::Duration last_latency{0};
  std::optional<std::uint64_t> current_connections;
  bool event_driven = false;
  std::uint32_t rise = 0, fall = 0;  // effective counts (type defaults applied)
  std::uint64_t results = 0;         // results fed so far
  std::uint64_t faults = 0;          // exceptions raised by the probe (each rebuilt it)
  // Wall time of the last change of the stable state (the first result
  // counts); nullopt before the first result.
  std::optional<std::chrono::system_clock::time_point> since;
  std::uint64_t failures = 0;  // results with status fail (faults included)
  // Run times of a polled check (event-driven checks have none).
  core::CheckDurationHistogram durations;
};

struct GroupStatus {
  std::string name;
  GroupDecision decision;
  std::vector<std::string> checks;
};

// What HealthManager::reconfigure did.
struct ReconfigureResult {
  bool applied = false;       // false: refused (errors), nothing changed
  std::size_t kept = 0;       // same spec: probe, state and history kept
  std::size_t restarted = 0;  // spec changed: a fresh probe and policy
  std::size_t started = 0;    // new checks
  std::size_t stopped = 0;    // removed (or no longer used by any group)
  std::vector<std::string> messages;
  std::vector<std::string> errors;  // a probe that could not be built
};

// Builds the probe of one check on `ex`, the check's own guarded executor over
// the ops loop: an exception escaping any handler run through it is a fault of
// that check (marked failing with the exception's text, probe rebuilt after a
// back-off), never of the loop. The default is make_probe(ex, spec); tests
// inject fakes. Must not return null.
using ProbeFactory = std::function<std::unique_ptr<Probe>(const config::CheckSpec&,
                                                          const boost::asio::any_io_executor& ex)>;

class HealthManager {
 public:
  // Creates probes (through make_probe) only for checks some [[group]] uses.
  // `log` may be null (nothing is logged). Throws only what the factory throws.
  HealthManager(boost::asio::io_context& ops, const config::Config& cfg, Sink sink,
                std::shared_ptr<spdlog::logger> log);
  HealthManager(boost::asio::io_context& ops, const config::Config& cfg, Sink sink,
                std::shared_ptr<spdlog::logger> log, ProbeFactory factory);
  ~HealthManager();
  HealthManager(const HealthManager&) = delete;
  HealthManager& operator=(const HealthManager&) = delete;

  // Applies every group's initial decision (Unknown -> hold Down, or Healthy
  // for a group without checks), starts heartbeats, watches event-driven
  // probes and runs every polled probe once. Call once.
  void start();
  // Cancels timers and probes; no sink call happens after stop() returns.
  void stop();
  // Ops loop only (the control socket handlers run there too). Checks in
  // config order (only those used by a group), groups in config order.
  std::vector<CheckStatus> checks() const;
  std::vector<GroupStatus> groups() const;

  // Reload (ops loop): replaces checks and groups at once. A check whose
  // spec is unchanged (every field but line/column) keeps its probe, policy
  // state and history; a changed or new one starts fresh, a removed one
  // stops. Each group is re-evaluated and handed to the sink only where its
  // decision changed. A group that existed keeps its last decision until
  // every one of its checks has reported again (editing a check does not
  // flap it); a new group starts Unknown, held Down until its first verdict.
  // If a new probe cannot be built, nothing changes (applied false).
  ReconfigureResult reconfigure(const config::Config& cfg);

#ifdef BEACON_TEST_HOOKS
  // Fault injection: posts a handler to the ops io_context that blocks it
  // for `d` (a stalled ops loop); the engine's fail-safe must notice.
  void test_stall(core::Duration d);
#endif

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace beacon::health
