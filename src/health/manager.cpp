// HealthManager (ops loop). See manager.hpp.
//
// Lifetime: Impl owns the probes and timers. Every callback handed to a probe
// or a timer holds a weak reference to `alive_` and returns at once when it
// has expired, so a late probe callback or an aborted timer handler queued
// after the manager is gone is a no-op. All state is touched on the ops loop
// thread only, so no lock is needed.
#include "beacon/health/manager.hpp"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <map>
#include <thread>
#include <utility>

#include "beacon/config/diff.hpp"
#include "guarded_executor.hpp"

namespace beacon::health {
namespace {

namespace asio = boost::asio;
using std::chrono::duration_cast;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr core::Duration kStuckGrace{200'000};  // beyond 2 * timeout
// Rebuilding a probe that raised: first after 1 s, doubling while it keeps
// raising, so a probe that throws on every run costs a log line per 30 s.
constexpr core::Duration kFaultBackoffMin = core::kOneSecond;
constexpr core::Duration kFaultBackoffMax = 30 * core::kOneSecond;

long long to_ms(core::Duration d) {
  return duration_cast<milliseconds>(d).count();
}

// `s` with its type defaults for the 0 fields (a hand-made spec may have them).
config::CheckSpec resolved(const config::CheckSpec& s) {
  config::CheckSpec r = s;
  config::apply_check_defaults(r);
  return r;
}

bool same_signal(const GroupDecision& a, const GroupDecision& b) {
  return a.verdict == b.verdict && a.hold == b.hold && a.diag == b.diag;
}

}  // namespace

struct HealthManager::Impl {
  struct CheckRt {
    config::CheckSpec spec;
    // Every handler of this check (its probe's and its own timer's) runs
    // through `ex`; what escapes one becomes a fault of this check.
    asio::any_io_executor ex;
    std::unique_ptr<Probe> probe;
    CheckPolicy policy;
    asio::steady_timer timer;
    asio::steady_timer restart_timer;  // plain executor: rebuilds a faulted probe
    core::Duration interval, fast_interval, timeout;
    std::vector<std::size_t> groups;  // indices into groups_
    bool running = false;
    Clock::time_point started{};
    std::uint64_t arm_seq = 0;  // ignores a tick that was already queued when re-armed
    std::uint64_t results = 0;
    std::uint64_t generation = 0;  // bumped when a probe is retired; stale callbacks check it
    std::uint64_t faults = 0;
    std::uint64_t failures = 0;              // fail results, faults included
    core::CheckDurationHistogram durations;  // polled runs only
    std::uint32_t consecutive_faults = 0;
    // Wall time of the last stable-state change (the first result counts).
    std::optional<std::chrono::system_clock::time_point> since;
    bool event_driven = false;  // of the probe (kept while a faulted probe is retired)

    // `spec` is kept as given (a reload compares it with the new one); the
    // schedule and hysteresis use it with the type defaults applied.
    CheckRt(asio::io_context& io, asio::any_io_executor guarded, const config::CheckSpec& s)
        : CheckRt(io, std::move(guarded), s, resolved(s)) {}
    CheckRt(asio::io_context& io, asio::any_io_executor guarded, const config::CheckSpec& s,
            const config::CheckSpec& r)
        : spec(s),
          ex(std::move(guarded)),
          policy(r.rise, r.fall),
          timer(ex),
          restart_timer(io),
          interval(r.interval),
          fast_interval(r.fast_interval),
          timeout(r.timeout) {}

    core::Duration next_delay() const {
      return !policy.known() || policy.in_transition() ? fast_interval : interval;
    }
  };
  struct GroupRt {
    config::GroupSpec spec;
    std::vector<std::ptrdiff_t> checks;    // indices into checks_, -1: undefined check
    std::optional<GroupDecision> applied;  // last decision handed to the sink
    GroupDecision current;                 // latest computed (reason may be fresher)
    bool carry = false;                    // reloaded: keeps `applied` until no check is unknown
  };

  asio::io_context& io_;
  ProbeFactory factory_;
  Sink sink_;
  std::shared_ptr<spdlog::logger> log_;
  core::Duration heartbeat_interval_;
  std::vector<std::unique_ptr<CheckRt>> checks_;
  std::vector<GroupRt> groups_;
  // Live checks in config order. checks_ keeps a null where a reload removed
  // one: callbacks hold indices into it, and a late one finds the null.
  std::vector<std::size_t> order_;
  asio::steady_timer heartbeat_timer_;
  Clock::time_point heartbeat_due_{};
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
  bool started_ = false, stopped_ = false;

  Impl(asio::io_context& io, const config::Config& cfg, Sink sink,
       std::shared_ptr<spdlog::logger> log, ProbeFactory factory)
      : io_(io),
        factory_(std::move(factory)),
        sink_(std::move(sink)),
        log_(std::move(log)),
        heartbeat_interval_(cfg.health.heartbeat_interval > core::Duration{0}
                                ? cfg.health.heartbeat_interval
                                : core::Duration{100'000}),
        heartbeat_timer_(io) {
    std::map<std::string, std::size_t> by_name;
    for (const auto& c : cfg.checks) {
      if (!used_by_a_group(cfg, c.name)) {
        if (log_) log_->warn("check {}: not used by any group; not run", c.name);
        continue;
      }
      if (by_name.count(c.name) != 0) continue;  // the loader rejects duplicates
      auto rt = make_check(checks_.size(), c);
      by_name[c.name] = checks_.size();
      order_.push_back(checks_.size());
      checks_.push_back(std::move(rt));
    }
    build_groups(cfg, by_name, {});
  }

  static bool used_by_a_group(const config::Config& cfg, const std::string& name) {
    return std::any_of(cfg.groups.begin(), cfg.groups.end(), [&](const config::GroupSpec& g) {
      return std::find(g.checks.begin(), g.checks.end(), name) != g.checks.end();
    });
  }

  // A check's runtime at `index` of checks_ (its fault handler names it).
  // Throws what the factory throws.
  std::unique_ptr<CheckRt> make_check(std::size_t index, const config::CheckSpec& spec) {
    auto guarded = detail::make_guarded_executor(
        io_, [this, index, w = std::weak_ptr<int>(alive_)](const std::string& what) {
          if (w.expired()) return;
          report_fault(index, what);
        });
    auto rt = std::make_unique<CheckRt>(io_, asio::any_io_executor(guarded), spec);
    rt->probe = factory_(spec, rt->ex);
    rt->event_driven = rt->probe->event_driven();
    return rt;
  }

  // groups_ from cfg over the checks in by_name; a group of the same name in
  // `before` hands on the decision it last gave the sink.
  void build_groups(const config::Config& cfg, const std::map<std::string, std::size_t>& by_name,
                    std::map<std::string, GroupRt> before) {
    groups_.clear();
    for (std::size_t i : order_) checks_[i]->groups.clear();
    for (const auto& g : cfg.groups) {
      GroupRt rt{g, {}, std::nullopt, {}, false};
      if (auto old = before.find(g.name); old != before.end()) {
        rt.applied = old->second.applied;
        rt.current = old->second.current;
        rt.carry = rt.applied && rt.applied->verdict != Verdict::Unknown;
      }
      for (const auto& name : g.checks) {
        auto it = by_name.find(name);
        if (it == by_name.end()) {
          // The loader rejects this; stay safe anyway: never known -> held Down.
          if (log_) log_->error("group {}: unknown check \"{}\"; group stays down", g.name, name);
          rt.checks.push_back(-1);
          continue;
        }
        rt.checks.push_back(static_cast<std::ptrdiff_t>(it->second));
        auto& member_of = checks_[it->second]->groups;
        const std::size_t gi = groups_.size();
        if (std::find(member_of.begin(), member_of.end(), gi) == member_of.end()) {
          member_of.push_back(gi);
        }
      }
      groups_.push_back(std::move(rt));
    }
  }

  bool live(std::size_t i) const { return i < checks_.size() && checks_[i] != nullptr; }

  // ---- reload ----
  ReconfigureResult reconfigure(const config::Config& cfg) {
    ReconfigureResult r;
    if (stopped_) {
      r.errors.push_back("health checks are stopped");
      return r;
    }
    std::map<std::string, std::size_t> old_by_name;
    for (std::size_t i : order_) old_by_name[checks_[i]->spec.name] = i;
    std::map<std::string, std::size_t> by_name;
    std::vector<std::size_t> order, fresh;
    std::vector<std::unique_ptr<CheckRt>> created;
    // Fresh probes first, into a side list: a factory that throws refuses
    // the reload before any running check is touched.
    for (const auto& c : cfg.checks) {
      if (!used_by_a_group(cfg, c.name) || by_name.count(c.name) != 0) continue;
      if (auto it = old_by_name.find(c.name);
          it != old_by_name.end() && config::same_spec(checks_[it->second]->spec, c)) {
        by_name[c.name] = it->second;
        order.push_back(it->second);
        old_by_name.erase(it);
        ++r.kept;
        continue;
      }
      const std::size_t index = checks_.size() + created.size();
      try {
        created.push_back(make_check(index, c));
      } catch (const std::exception& e) {
        r.errors.push_back("check " + c.name + ": " + e.what());
        continue;
      }
      r.messages.push_back("check " + c.name +
                           (old_by_name.count(c.name) != 0 ? ": changed, restarted" : ": added"));
      by_name[c.name] = index;
      order.push_back(index);
      fresh.push_back(index);
    }
    // Never run: destroying them is all there is to undo.
    if (!r.errors.empty()) return r;
    r.applied = true;
    for (auto& c : created) checks_.push_back(std::move(c));
    // Stop what is gone or was replaced; late callbacks find a null slot.
    std::vector<std::unique_ptr<CheckRt>> retired;
    for (const auto& [name, i] : old_by_name) {
      CheckRt& c = *checks_[i];
      ++c.generation;
      ++c.arm_seq;
      c.timer.cancel();
      c.restart_timer.cancel();
      if (c.probe) {
        try {
          c.probe->cancel();
        } catch (...) {  // dropped all the same
        }
      }
      if (cfg_has_check(cfg, name)) {
        ++r.restarted;
      } else {
        ++r.stopped;
        r.messages.push_back("check " + name + ": removed, stopped");
      }
      retired.push_back(std::move(checks_[i]));
    }
    r.started = fresh.size() - r.restarted;
    order_ = std::move(order);
    std::map<std::string, GroupRt> before;
    for (auto& g : groups_) before.emplace(g.spec.name, std::move(g));
    build_groups(cfg, by_name, std::move(before));
    if (log_) {
      log_->info("health: reload: {} checks kept, {} restarted, {} added, {} stopped; {} groups",
                 r.kept, r.restarted, r.started, r.stopped, groups_.size());
    }
    if (!started_) return r;  // start() runs them all
    for (std::size_t g = 0; g < groups_.size() && !stopped_; ++g) recompute(g);
    for (std::size_t i : fresh) {
      if (stopped_) break;
      start_check(i);
    }
    return r;
  }

  static bool cfg_has_check(const config::Config& cfg, const std::string& name) {
    return used_by_a_group(cfg, name) &&
           std::any_of(cfg.checks.begin(), cfg.checks.end(),
                       [&](const config::CheckSpec& c) { return c.name == name; });
  }

  ~Impl() { stop(); }

  void start() {
    if (started_ || stopped_) return;
    started_ = true;
    for (std::size_t g = 0; g < groups_.size(); ++g) recompute(g);
    heartbeat_due_ = Clock::now();
    heartbeat();
    for (std::size_t i : std::vector<std::size_t>(order_)) {
      if (stopped_) break;
      start_check(i);
    }
  }

  void start_check(std::size_t i) {
    CheckRt& c = *checks_[i];
    if (c.event_driven) {
      call_probe(i, [&] {
        c.probe->watch([this, i, gen = c.generation, w = std::weak_ptr<int>(alive_)](Result r) {
          if (w.expired() || stopped_ || !live(i) || checks_[i]->generation != gen) return;
          feed(i, std::move(r));
        });
      });
    } else {
      start_run(i);
    }
  }

  // A call into check i's probe; what it throws is a fault of that check.
  template <class F>
  void call_probe(std::size_t i, F&& f) {
    try {
      f();
    } catch (const std::exception& e) {
      report_fault(i, e.what());
    } catch (...) {
      report_fault(i, "unknown exception");
    }
  }

  // ---- faults: a probe raised; fail the check, retire the probe, rebuild it ----
  // Called from inside the failed handler's frame (or a catch around a probe
  // call): only records and posts, so the probe is never destroyed under its
  // own feet.
  void report_fault(std::size_t i, const std::string& what) {
    if (stopped_ || !live(i)) return;
    asio::post(io_, [this, i, gen = checks_[i]->generation, what, w = std::weak_ptr<int>(alive_)] {
      if (w.expired() || stopped_) return;
      fault(i, gen, what);
    });
  }

  void fault(std::size_t i, std::uint64_t gen, const std::string& what) {
    if (!live(i)) return;  // removed by a reload
    CheckRt& c = *checks_[i];
    if (c.generation != gen) return;  // that probe is already retired
    ++c.generation;                   // its late callbacks are ignored from now on
    ++c.faults;
    ++c.arm_seq;
    c.running = false;
    c.timer.cancel();
    // Destroyed at the end of this handler, outside the probe's own frames.
    const std::unique_ptr<Probe> retired = std::move(c.probe);
    if (retired) {
      try {
        retired->cancel();
      } catch (...) {  // a probe that cannot even cancel is dropped all the same
      }
    }
    const core::Duration backoff = std::min(
        kFaultBackoffMax, core::Duration(kFaultBackoffMin.count()
                                         << std::min<std::uint32_t>(c.consecutive_faults, 5)));
    ++c.consecutive_faults;
    if (log_) {
      log_->error("check {}: probe raised an exception: {}; check fails, probe rebuilt in {}ms",
                  c.spec.name, what, to_ms(backoff));
    }
    Result r;
    r.status = Status::Fail;
    r.reason = "probe error: " + what;
    ++c.results;
    ++c.failures;
    const Status before = c.policy.state();
    const bool changed = c.policy.force(r);
    if (changed) c.since = std::chrono::system_clock::now();
    if (changed && log_) {
      log_->info("check {}: {} -> fail ({})", c.spec.name, status_name(before), r.reason);
    }
    for (std::size_t g : c.groups) {
      if (stopped_) return;
      recompute(g);
    }
    c.restart_timer.expires_after(backoff);
    c.restart_timer.async_wait(
        [this, i, w = std::weak_ptr<int>(alive_)](boost::system::error_code ec) {
          if (ec || w.expired() || stopped_) return;
          rebuild(i);
        });
  }

  void rebuild(std::size_t i) {
    if (!live(i)) return;
    CheckRt& c = *checks_[i];
    try {
      c.probe = factory_(c.spec, c.ex);
    } catch (const std::exception& e) {
      report_fault(i, std::string("rebuilding the probe: ") + e.what());
      return;
    }
    if (log_) log_->info("check {}: probe rebuilt after a fault", c.spec.name);
    start_check(i);
  }

  void stop() {
    if (stopped_) return;
    stopped_ = true;
    heartbeat_timer_.cancel();
    for (auto& c : checks_) {
      if (!c) continue;
      c->timer.cancel();
      c->restart_timer.cancel();
      if (c->probe) c->probe->cancel();
    }
  }

  // ---- heartbeat: periodic from the previous deadline, never bursting ----
  void heartbeat() {
    if (stopped_) return;
    try {
      if (sink_.heartbeat) sink_.heartbeat();
    } catch (const std::exception& e) {
      if (log_) log_->error("health heartbeat failed: {}", e.what());
    }
    heartbeat_due_ += heartbeat_interval_;
    const auto now = Clock::now();
    if (heartbeat_due_ < now) heartbeat_due_ = now + heartbeat_interval_;  // after a stall
    heartbeat_timer_.expires_at(heartbeat_due_);
    heartbeat_timer_.async_wait(
        [this, w = std::weak_ptr<int>(alive_)](boost::system::error_code ec) {
          if (ec || w.expired()) return;
          heartbeat();
        });
  }

  // ---- polled checks ----
  void arm(std::size_t i, Clock::time_point at) {
    CheckRt& c = *checks_[i];
    const std::uint64_t seq = ++c.arm_seq;
    c.timer.expires_at(at);
    c.timer.async_wait(
        [this, i, seq, w = std::weak_ptr<int>(alive_)](boost::system::error_code ec) {
          if (ec || w.expired() || stopped_) return;
          if (!live(i) || checks_[i]->arm_seq != seq) return;
          tick(i);
        });
  }

  void tick(std::size_t i) {
    CheckRt& c = *checks_[i];
    if (!c.running) {
      start_run(i);
      return;
    }
    // Never two runs at once. A run far past its timeout is a probe bug: it
    // counts as a failure each tick it stays stuck.
    const auto now = Clock::now();
    const auto outstanding = duration_cast<core::Duration>(now - c.started);
    if (outstanding >= 2 * c.timeout + kStuckGrace) {
      Result r;
      r.status = Status::Fail;
      r.reason = "probe did not complete within " + std::to_string(to_ms(outstanding)) + "ms";
      r.latency = outstanding;
      feed(i, std::move(r));
      if (stopped_) return;
    }
    arm(i, now + c.next_delay());
  }

  void start_run(std::size_t i) {
    CheckRt& c = *checks_[i];
    c.running = true;
    c.started = Clock::now();
    // Backstop tick first: a probe may complete synchronously inside run(),
    // and its completion re-arms the timer.
    arm(i, c.started + c.next_delay());
    call_probe(i, [&] {
      c.probe->run([this, i, gen = c.generation, w = std::weak_ptr<int>(alive_)](Result r) {
        if (w.expired() || stopped_ || !live(i) || checks_[i]->generation != gen) return;
        on_run_done(i, std::move(r));
      });
    });
  }

  void on_run_done(std::size_t i, Result r) {
    CheckRt& cr = *checks_[i];
    if (!cr.running) return;  // contract breach: done called twice
    cr.running = false;
    feed(i, std::move(r));
    if (stopped_) return;
    // Next run `delay` after this one started; at once if already late.
    arm(i, std::max(cr.started + cr.next_delay(), Clock::now()));
  }

  // ---- results and verdicts ----
  void feed(std::size_t i, Result r) {
    CheckRt& c = *checks_[i];
    ++c.results;
    if (r.status == Status::Fail) ++c.failures;
    if (!c.event_driven) c.durations.observe(r.latency);
    c.consecutive_faults = 0;
    const Status before = c.policy.state();
    const bool was_known = c.policy.known();
    const bool changed = c.policy.feed(r);
    if (changed) c.since = std::chrono::system_clock::now();
    if (changed && log_) {
      if (was_known) {
        log_->info("check {}: {} -> {} ({})", c.spec.name, status_name(before),
                   status_name(c.policy.state()), c.policy.reason());
      } else {
        log_->info("check {}: first result {} ({})", c.spec.name, status_name(c.policy.state()),
                   c.policy.reason());
      }
    } else if (log_ && r.status != c.policy.state()) {
      log_->debug("check {}: {} ({}) while {}", c.spec.name, status_name(r.status), r.reason,
                  status_name(c.policy.state()));
    }
    for (std::size_t g : c.groups) {
      if (stopped_) return;
      recompute(g);
    }
  }

  void recompute(std::size_t g) {
    GroupRt& grp = groups_[g];
    std::vector<std::pair<std::string, const CheckPolicy*>> members;
    members.reserve(grp.checks.size());
    for (std::size_t k = 0; k < grp.checks.size(); ++k) {
      const auto idx = grp.checks[k];
      members.emplace_back(grp.spec.checks[k],
                           idx < 0 ? nullptr : &checks_[static_cast<std::size_t>(idx)]->policy);
    }
    grp.current = decide(grp.spec, members);
    // After a reload a group keeps the decision it had until every one of
    // its (restarted or new) checks has reported: editing a check must not
    // flap the group. A new group starts Unknown (held Down), as at start.
    if (grp.carry) {
      if (grp.current.verdict == Verdict::Unknown) return;
      grp.carry = false;
    }
    if (grp.applied && same_signal(*grp.applied, grp.current)) return;
    if (log_) {
      std::string signal(core::hold_name(grp.current.hold));
      if (grp.current.hold != core::Hold::None)
        signal += " diag " + std::to_string(grp.current.diag);
      log_->info("group {}: {} -> {} ({}); signal {}", grp.spec.name,
                 grp.applied ? verdict_name(grp.applied->verdict) : std::string_view("start"),
                 verdict_name(grp.current.verdict), grp.current.reason, signal);
    }
    grp.applied = grp.current;
    if (sink_.apply) sink_.apply(grp.spec.name, grp.current);
  }

  std::vector<CheckStatus> checks() const {
    std::vector<CheckStatus> out;
    out.reserve(order_.size());
    for (std::size_t i : order_) {
      const auto& c = checks_[i];
      CheckStatus s;
      s.name = c->spec.name;
      s.type = std::string(config::type_name(c->spec.type));
      s.state = c->policy.state();
      s.known = c->policy.known();
      s.in_transition = c->policy.in_transition();
      s.reason = c->policy.known() ? c->policy.reason() : "no result yet";
      s.last_status = c->policy.last().status;
      s.last_reason = c->policy.last().reason;
      s.last_latency = c->policy.last().latency;
      s.current_connections = c->policy.last().current_connections;
      s.event_driven = c->event_driven;
      s.rise = c->policy.rise();
      s.fall = c->policy.fall();
      s.results = c->results;
      s.faults = c->faults;
      s.since = c->since;
      s.failures = c->failures;
      s.durations = c->durations;
      out.push_back(std::move(s));
    }
    return out;
  }

  std::vector<GroupStatus> groups() const {
    std::vector<GroupStatus> out;
    out.reserve(groups_.size());
    for (const auto& g : groups_) {
      if (g.carry && g.applied && g.current.verdict == Verdict::Unknown) {
        GroupDecision kept = *g.applied;
        kept.reason += " (kept across the reload until every check reports)";
        out.push_back(GroupStatus{g.spec.name, std::move(kept), g.spec.checks});
        continue;
      }
      out.push_back(GroupStatus{g.spec.name, g.current, g.spec.checks});
    }
    return out;
  }
};

HealthManager::HealthManager(asio::io_context& ops, const config::Config& cfg, Sink sink,
                             std::shared_ptr<spdlog::logger> log)
    : HealthManager(ops, cfg, std::move(sink), std::move(log),
                    [](const config::CheckSpec& spec, const asio::any_io_executor& ex) {
                      return make_probe(ex, spec);
                    }) {}

HealthManager::HealthManager(asio::io_context& ops, const config::Config& cfg, Sink sink,
                             std::shared_ptr<spdlog::logger> log, ProbeFactory factory)
    : impl_(std::make_unique<Impl>(ops, cfg, std::move(sink), std::move(log), std::move(factory))) {
}

HealthManager::~HealthManager() = default;

void HealthManager::start() {
  impl_->start();
}
void HealthManager::stop() {
  impl_->stop();
}
std::vector<CheckStatus> HealthManager::checks() const {
  return impl_->checks();
}
std::vector<GroupStatus> HealthManager::groups() const {
  return impl_->groups();
}
ReconfigureResult HealthManager::reconfigure(const config::Config& cfg) {
  return impl_->reconfigure(cfg);
}

#ifdef BEACON_TEST_HOOKS
void HealthManager::test_stall(core::Duration d) {
  if (impl_->log_) impl_->log_->warn("test hook: stalling the ops loop for {}ms", to_ms(d));
  asio::post(impl_->io_, [d] { std::this_thread::sleep_for(d); });
}
#endif

}  // namespace beacon::health
