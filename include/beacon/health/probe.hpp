// Health probes (ops loop). A probe only says pass / fail / maintenance plus a
// reason and its latency; hysteresis (rise/fall) lives in the policy, never
// here. Every probe runs on the ops loop's io_context and must never block
// it: sockets, curl multi, pidfd, netlink and inotify are all driven by
// asynchronous waits; exec uses fork/exec + pidfd.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "beacon/config/config.hpp"
#include "beacon/core/time.hpp"

namespace beacon::health {

enum class Status : std::uint8_t { Pass, Fail, Maintenance };

std::string_view status_name(Status s);  // "pass", "fail", "maintenance"

struct Result {
  Status status = Status::Fail;
  std::string reason;         // human text: "HTTP 503", "process 1234 exited", ...
  core::Duration latency{0};  // time the probe took (0 for events)
  // haproxy-socket extras (drain uses them later)
  std::optional<std::uint64_t> current_connections;
  bool reloaded = false;  // HAProxy Pid/Start_time changed since last run
};

using ResultFn = std::function<void(Result)>;

class Probe {
 public:
  virtual ~Probe() = default;

  // Polled probes: run once and call `done` exactly once, on the ops loop,
  // within the configured timeout (a timeout is a Fail with reason "timeout").
  // A probe that cannot run (missing socket, bad URL, ...) reports Fail with a
  // clear reason; it never throws and never passes by default.
  virtual void run(ResultFn done) = 0;

  // Event-driven probes (haproxy-process, interface, file) return true and
  // report through watch(): once at start with the current state, then at
  // once on every change. Polled probes keep the defaults.
  virtual bool event_driven() const { return false; }
  virtual void watch(ResultFn on_change) { (void)on_change; }

  // Cancels outstanding work; no callback runs after cancel() returns.
  virtual void cancel() {}
};

// Creates the probe for spec.type; every timer, socket and descriptor of the
// probe lives on `ex`, so every handler it runs goes through that executor
// (the health manager hands each check a guarded one). Never throws for
// runtime problems (those become Fail results); throws std::invalid_argument
// only for a type the config loader should have rejected.
std::unique_ptr<Probe> make_probe(const boost::asio::any_io_executor& ex,
                                  const config::CheckSpec& spec);
inline std::unique_ptr<Probe> make_probe(boost::asio::io_context& io,
                                         const config::CheckSpec& spec) {
  return make_probe(io.get_executor(), spec);
}

// HAProxy's current connections for drain: on the runtime socket `socket`,
// "show info" (the probe's usual checks: Stopping, reloads), then
// "show stat -1 1 -1" and the current sessions (scur) summed over the
// FRONTEND rows of `frontends` (empty: every FRONTEND row). A polled probe
// whose Pass result carries current_connections; a named frontend missing
// from the answer is a Fail. The same connection, retry and timeout handling
// as the haproxy-socket check (`timeout` covers the whole run).
std::unique_ptr<Probe> make_haproxy_connection_counter(const boost::asio::any_io_executor& ex,
                                                       const std::string& socket,
                                                       core::Duration timeout,
                                                       std::vector<std::string> frontends = {});

struct FrontendConnections {
  std::uint64_t current = 0;         // sum of scur over the counted FRONTEND rows
  std::size_t frontends = 0;         // rows counted
  std::vector<std::string> missing;  // names of `only` with no FRONTEND row
};
// Parses a "show stat" answer, counting the FRONTEND rows whose pxname is in
// `only` (empty: all); nullopt when it is not the expected CSV.
std::optional<FrontendConnections> sum_frontend_connections(
    std::string_view show_stat, const std::vector<std::string>& only = {});

}  // namespace beacon::health
