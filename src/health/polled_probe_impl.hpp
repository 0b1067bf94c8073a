// Small helpers shared by the polled probes (haproxy-http, haproxy-socket,
// exec). Private to src/health.
#pragma once

#include <algorithm>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "beacon/config/config.hpp"
#include "beacon/core/time.hpp"
#include "beacon/health/probe.hpp"

namespace beacon::health::detail {

// CheckSpec::timeout with the type default for 0 (config::apply_check_defaults).
inline core::Duration effective_timeout(const config::CheckSpec& spec) {
  config::CheckSpec resolved = spec;
  config::apply_check_defaults(resolved);
  return resolved.timeout;
}

// "150ms": the text used in "timeout after 150ms".
inline std::string ms_text(core::Duration d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) + "ms";
}

// Retrying a connection that failed during an HAProxy hand-over, within one
// run's timeout: 5, 10, 20, 40 ms, then 40 ms after `retries` earlier tries.
inline constexpr core::Duration kRetryMin{5'000};
inline constexpr core::Duration kRetryMax{40'000};
inline core::Duration retry_delay(unsigned retries) {
  return std::min(kRetryMax, core::Duration(kRetryMin.count() << std::min(retries, 3u)));
}

// " (after 3 retries<extra>)", or "" before any retry: appended to the reason
// of a failure that persisted.
inline std::string retries_text(unsigned retries, const std::string& extra = {}) {
  if (retries == 0) return {};
  return " (after " + std::to_string(retries) + (retries == 1 ? " retry" : " retries") + extra +
         ")";
}

inline core::Duration since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration_cast<core::Duration>(std::chrono::steady_clock::now() - start);
}

// The run lifecycle every polled probe shares (CRTP base of its
// implementation, which derives from std::enable_shared_from_this<Derived>):
//  * one run at a time: begin_run() while a run is outstanding first finishes
//    the old one as Fail "superseded";
//  * every handler of a run captures generation_ and returns when it changed:
//    finish() and cancel() bump it, so a late handler of a finished,
//    superseded or cancelled run does nothing;
//  * finish() calls `done` exactly once, never from inside run() (failures
//    found before any I/O go through post_fail());
//  * arm_deadline() (optional: haproxy-http lets curl time the transfer)
//    fails the run after timeout_.
// Hooks of Derived: stop_io() (ends the run's I/O; called on finish and
// cancel), and optionally take_result() (the extras of the Result) and
// on_timeout() (the deadline's failure). Ops loop thread only.
template <class Derived>
class PolledRun {
 protected:
  PolledRun(const boost::asio::any_io_executor& io, const config::CheckSpec& spec)
      : io_(io), timeout_(effective_timeout(spec)), deadline_(io) {}

  void begin_run(ResultFn done) {
    if (done_) finish(Status::Fail, "superseded");
    ++generation_;
    started_ = std::chrono::steady_clock::now();
    done_ = std::move(done);
  }

  void arm_deadline() {
    deadline_.expires_after(timeout_);
    deadline_.async_wait(
        [wself = self().weak_from_this(), gen = generation_](boost::system::error_code ec) {
          auto s = wself.lock();
          if (!s || ec || gen != s->generation_) return;
          s->on_timeout();
        });
  }

  // Reports a failure found before any I/O, asynchronously; dropped if the
  // run is cancelled or superseded first.
  void post_fail(std::string reason) {
    boost::asio::post(
        io_, [wself = self().weak_from_this(), gen = generation_, reason = std::move(reason)] {
          auto s = wself.lock();
          if (!s || gen != s->generation_) return;
          s->finish(Status::Fail, reason);
        });
  }

  void finish(Status status, std::string reason) {
    ++generation_;  // drops every handler of this run still queued
    deadline_.cancel();
    self().stop_io();
    ResultFn done = std::move(done_);
    done_ = nullptr;
    Result r = self().take_result();
    r.status = status;
    r.reason = std::move(reason);
    r.latency = since(started_);
    if (done) done(std::move(r));
  }

  // Default hooks; Derived hides them where it has more to say.
  Result take_result() { return Result{}; }
  void on_timeout() { finish(Status::Fail, "timeout after " + ms_text(timeout_)); }

  core::Duration elapsed() const { return since(started_); }

 public:
  // Drops the outstanding run; no callback runs afterwards.
  void cancel() {
    ++generation_;
    done_ = nullptr;
    deadline_.cancel();
    self().stop_io();
  }

 protected:
  boost::asio::any_io_executor io_;
  core::Duration timeout_;
  boost::asio::steady_timer deadline_;
  ResultFn done_;
  std::uint64_t generation_ = 0;
  std::chrono::steady_clock::time_point started_{};

 private:
  Derived& self() { return static_cast<Derived&>(*this); }
};

}  // namespace beacon::health::detail
