// FakeProbe: a health::Probe whose results a test scripts.
//
// The probe is owned by the HealthManager, so the test keeps a shared
// FakeProbeState per check name and reads/drives it from there. Polled
// probes answer each run() with the next scripted result (then `fallback`),
// either at once through a posted handler, after `delay`, or never (`hang`).
// Event-driven probes store the watch() callback; emit() reports a change at
// once, as an inotify/netlink/pidfd probe would. Single-threaded: use from the
// thread running the io_context (between run_for/poll calls).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "beacon/health/manager.hpp"
#include "beacon/health/probe.hpp"

namespace beacon::test {

inline health::Result make_result(health::Status s, std::string reason = {}) {
  health::Result r;
  r.status = s;
  r.reason = reason.empty() ? std::string(health::status_name(s)) : std::move(reason);
  return r;
}

struct FakeProbeState {
  bool event_driven = false;
  // Polled: results of successive runs; `fallback` once the script is empty.
  std::deque<health::Result> script;
  health::Result fallback = make_result(health::Status::Pass);
  bool hang = false;                   // runs never complete
  std::chrono::milliseconds delay{0};  // completion delay (0: posted at once)
  // Event-driven: reported from watch() (posted) when set.
  std::optional<health::Result> initial;
  // Faults: non-empty -> run()/watch() throw std::runtime_error(text) at once;
  // throw_in_handler: the posted completion throws instead of answering (an
  // exception escaping an asynchronous handler of the probe).
  std::string throw_in_run;
  std::string throw_in_handler;

  // Observations.
  int runs = 0;
  int in_flight = 0;
  int max_in_flight = 0;
  int watches = 0;
  bool cancelled = false;
  int generation = 0;  // probes built for this name so far (the newest owns the state)
  std::vector<std::chrono::steady_clock::time_point> run_starts;
  health::ResultFn watcher;
  std::vector<health::ResultFn> hung;  // done callbacks of hanging runs

  // Event-driven: report a change now (synchronously, like an event handler).
  void emit(health::Result r) {
    if (!watcher) throw std::logic_error("emit() before watch()");
    watcher(std::move(r));
  }
  void emit(health::Status s, std::string reason = {}) { emit(make_result(s, std::move(reason))); }
  void push(health::Status s, std::string reason = {}) {
    script.push_back(make_result(s, std::move(reason)));
  }
};

class FakeProbe final : public health::Probe {
 public:
  FakeProbe(boost::asio::any_io_executor ex, std::shared_ptr<FakeProbeState> st)
      : io_(std::move(ex)),
        st_(std::move(st)),
        alive_(std::make_shared<int>(0)),
        generation_(st_->generation) {}
  ~FakeProbe() override { alive_.reset(); }

  void run(health::ResultFn done) override {
    ++st_->runs;
    st_->run_starts.push_back(std::chrono::steady_clock::now());
    ++st_->in_flight;
    st_->max_in_flight = std::max(st_->max_in_flight, st_->in_flight);
    if (!st_->throw_in_run.empty()) {
      --st_->in_flight;
      throw std::runtime_error(st_->throw_in_run);
    }
    if (!st_->throw_in_handler.empty()) {
      boost::asio::post(io_, [st = st_, w = std::weak_ptr<int>(alive_)] {
        if (w.expired() || st->cancelled) return;
        --st->in_flight;
        throw std::runtime_error(st->throw_in_handler);
      });
      return;
    }
    if (st_->hang) {
      st_->hung.push_back(std::move(done));
      return;
    }
    health::Result r = st_->fallback;
    if (!st_->script.empty()) {
      r = std::move(st_->script.front());
      st_->script.pop_front();
    }
    auto finish = [st = st_, w = std::weak_ptr<int>(alive_), done = std::move(done),
                   r = std::move(r)]() mutable {
      if (w.expired() || st->cancelled) return;
      --st->in_flight;
      done(std::move(r));
    };
    if (st_->delay.count() == 0) {
      boost::asio::post(io_, std::move(finish));
      return;
    }
    auto timer = std::make_shared<boost::asio::steady_timer>(io_, st_->delay);
    timer->async_wait(
        [timer, finish = std::move(finish)](boost::system::error_code) mutable { finish(); });
  }

  bool event_driven() const override { return st_->event_driven; }

  void watch(health::ResultFn on_change) override {
    ++st_->watches;
    if (!st_->throw_in_run.empty()) throw std::runtime_error(st_->throw_in_run);
    st_->watcher = std::move(on_change);
    if (st_->initial) {
      boost::asio::post(io_, [st = st_, w = std::weak_ptr<int>(alive_), r = *st_->initial] {
        if (!w.expired() && !st->cancelled && st->watcher) st->watcher(r);
      });
    }
  }

  // A probe replaced by a newer one of the same name (a reload builds the
  // new one before it retires the old) leaves the shared state alone.
  void cancel() override {
    if (generation_ != st_->generation) return;
    st_->cancelled = true;
    st_->watcher = nullptr;
  }

 private:
  boost::asio::any_io_executor io_;  // the check's guarded executor
  std::shared_ptr<FakeProbeState> st_;
  std::shared_ptr<int> alive_;
  int generation_ = 0;
};

// ProbeFactory handing out FakeProbes by check name. Names without a state
// get a default (always passing, or an event probe for event-driven types).
class FakeProbes {
 public:
  explicit FakeProbes(boost::asio::io_context& io) : io_(io) {}

  std::shared_ptr<FakeProbeState> operator[](const std::string& name) {
    auto& st = states_[name];
    if (!st) st = std::make_shared<FakeProbeState>();
    return st;
  }
  health::ProbeFactory factory() {
    return [this](const config::CheckSpec& spec,
                  const boost::asio::any_io_executor& ex) -> std::unique_ptr<health::Probe> {
      auto st = (*this)[spec.name];
      if (spec.event_driven()) st->event_driven = true;
      ++created_;
      ++st->generation;
      st->cancelled = false;  // a rebuilt probe starts afresh
      st->in_flight = 0;
      return std::make_unique<FakeProbe>(ex, st);
    };
  }
  int created() const { return created_; }

 private:
  boost::asio::io_context& io_;
  std::map<std::string, std::shared_ptr<FakeProbeState>> states_;
  int created_ = 0;
};

}  // namespace beacon::test
