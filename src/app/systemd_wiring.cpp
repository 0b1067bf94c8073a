// See systemd_wiring.hpp.
#include "beacon/app/systemd_wiring.hpp"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <utility>

namespace beacon::app {
namespace {

namespace asio = boost::asio;
using core::Duration;
using core::TimePoint;

// A reason shown inside STATUS= is cut here: the line is for a human reading
// `systemctl status`; bfdctl groups has the whole text.
constexpr std::size_t kReasonMax = 60;
constexpr std::size_t kLineMax = 200;
// Groups listed one by one up to this many, then counted.
constexpr std::size_t kGroupsListed = 3;
// The watchdog thread's shortest wake-up: a tiny WATCHDOG_USEC must not spin.
constexpr Duration kMinProbe{5'000};

TimePoint steady_now() {
  return std::chrono::time_point_cast<Duration>(std::chrono::steady_clock::now());
}

std::string seconds_text(Duration d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f s", std::chrono::duration<double>(d).count());
  return buf;
}

std::string cut(std::string s, std::size_t max) {
  if (s.size() > max) {
    s.resize(max - 3);
    s += "...";
  }
  return s;
}

std::string group_text(const health::GroupStatus& g) {
  const std::string name = "group " + g.name;
  switch (g.decision.verdict) {
    case health::Verdict::Unknown:
      return name + " waiting for first verdict";
    case health::Verdict::Healthy:
      return name + " healthy";
    case health::Verdict::Unhealthy:
    case health::Verdict::Maintenance:
      break;
  }
  std::string out = name + " " + std::string(health::verdict_name(g.decision.verdict));
  if (!g.decision.reason.empty()) out += " (" + cut(g.decision.reason, kReasonMax) + ")";
  return out;
}

}  // namespace

std::string status_line(const std::vector<engine::SessionSnapshot>& sessions,
                        const std::vector<health::GroupStatus>& groups) {
  const auto up = std::count_if(sessions.begin(), sessions.end(),
                                [](const auto& s) { return s.state == core::wire::State::Up; });
  std::string line = std::to_string(up) + "/" + std::to_string(sessions.size()) + " sessions Up";
  std::vector<const health::GroupStatus*> managed;
  for (const auto& g : groups) {
    if (!g.checks.empty()) managed.push_back(&g);
  }
  if (managed.size() <= kGroupsListed) {
    for (const auto* g : managed) line += ", " + group_text(*g);
    return cut(std::move(line), kLineMax);
  }
  // Many groups: counts per verdict, naming those that are not healthy.
  constexpr health::Verdict kOrder[] = {health::Verdict::Healthy, health::Verdict::Unhealthy,
                                        health::Verdict::Maintenance, health::Verdict::Unknown};
  line += ", groups:";
  bool first = true;
  for (health::Verdict v : kOrder) {
    std::size_t n = 0;
    std::string names;
    for (const auto* g : managed) {
      if (g->decision.verdict != v) continue;
      ++n;
      if (v != health::Verdict::Healthy && n <= kGroupsListed) {
        names += (names.empty() ? "" : ", ") + g->name;
      }
    }
    if (n == 0) continue;
    line += std::string(first ? " " : ", ") + std::to_string(n) + " " +
            std::string(v == health::Verdict::Unknown ? "waiting" : health::verdict_name(v));
    if (!names.empty()) line += " (" + names + (n > kGroupsListed ? ", ..." : "") + ")";
    first = false;
  }
  return cut(std::move(line), kLineMax);
}

bool first_verdicts_in(const std::vector<health::GroupStatus>& groups) {
  return std::none_of(groups.begin(), groups.end(), [](const health::GroupStatus& g) {
    return g.decision.verdict == health::Verdict::Unknown;
  });
}

std::string loops_dead(TimePoint now, std::optional<TimePoint> ops, std::optional<TimePoint> engine,
                       Duration bound) {
  std::string out;
  auto check = [&](const char* what, std::optional<TimePoint> t) {
    std::string why;
    if (!t) {
      why = std::string(what) + " not answering yet";
    } else if (now - *t > bound) {
      why = std::string(what) + " silent for " + seconds_text(now - *t);
    }
    if (!why.empty()) out += (out.empty() ? "" : ", ") + why;
  };
  check("ops loop", ops);
  check("engine loop", engine);
  return out;
}

SystemdNotifier::SystemdNotifier(sd::Environment env, asio::io_context& ops, engine::Engine& engine,
                                 std::shared_ptr<spdlog::logger> log)
    : notifier_(env.notify_socket),
      watchdog_(env.watchdog),
      ops_(ops),
      engine_(engine),
      log_(std::move(log)),
      ops_period_(watchdog_ ? std::clamp(*watchdog_ / 8, kMinProbe, kStatusPeriod) : kStatusPeriod),
      timer_(ops) {
  if (!notifier_.error().empty() && log_) log_->warn("systemd: {}", notifier_.error());
  if (!notifier_.enabled()) watchdog_.reset();
}

SystemdNotifier::~SystemdNotifier() {
  stop_watchdog();
}

bool SystemdNotifier::send_unless_stopped(std::string_view message) {
  std::lock_guard lk(mu_);
  if (stopped_) return false;
  return notifier_.send(message);
}

void SystemdNotifier::stamp_ops() noexcept {
  ops_alive_us_.store(steady_now().time_since_epoch().count(), std::memory_order_release);
}

void SystemdNotifier::start(health::HealthManager& health) {
  if (!enabled()) return;
  health_ = &health;
  tick();
}

void SystemdNotifier::tick() {
  stamp_ops();
  evaluate(true);
  timer_.expires_after(std::chrono::microseconds(ops_period_.count()));
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) tick();
  });
}

void SystemdNotifier::poke() {
  if (!enabled() || health_ == nullptr || poke_posted_) return;
  poke_posted_ = true;
  asio::post(ops_, [this] {
    poke_posted_ = false;
    evaluate(false);
  });
}

// Never lets an exception out: this runs in ops loop handlers, and a failed
// status must not become a failed control plane.
void SystemdNotifier::evaluate(bool from_tick) {
  if (health_ == nullptr) return;
  try {
    const auto groups = health_->groups();
    const bool becomes_ready = !ready_ && first_verdicts_in(groups);
    const TimePoint now = steady_now();
    const Duration since = now - last_status_at_;
    const bool due = becomes_ready || since >= kStatusPeriod ||
                     ((from_tick ? status_dirty_ : true) && since >= kStatusMinGap);
    if (!due) {
      status_dirty_ = true;
      return;
    }
    status_dirty_ = false;
    last_status_at_ = now;
    std::string line = status_line(engine_.view()->sessions, groups);
    if (!ready_ && !becomes_ready) line = "starting: " + line;
    if (becomes_ready) {
      ready_ = true;
      const bool sent = send_unless_stopped("READY=1\n" + sd::status_field(line));
      if (log_) {
        if (sent) {
          log_->info("systemd: ready ({})", line);
        } else {
          log_->warn("systemd: READY=1 could not be sent: {}",
                     std::strerror(notifier_.last_errno()));
        }
      }
    } else if (line != last_status_) {
      send_unless_stopped(sd::status_field(line));
    }
    last_status_ = std::move(line);
  } catch (const std::exception& e) {
    if (log_) log_->warn("systemd: status not updated: {}", e.what());
  } catch (...) {
    if (log_) log_->warn("systemd: status not updated: unknown exception");
  }
}

void SystemdNotifier::start_watchdog() {
  if (!watchdog_ || watchdog_thread_.joinable()) return;
  if (log_) {
    log_->info("systemd: watchdog {} ms: keep-alive every {} ms while both loops answer",
               watchdog_->count() / 1000, watchdog_->count() / 2000);
  }
  watchdog_thread_ = std::thread([this] { watchdog_main(); });
}

void SystemdNotifier::watchdog_main() {
  const Duration period = *watchdog_ / 2;
  // Each loop is asked (engine) or stamps (ops) about four times per
  // keep-alive, and a stamp older than two of those intervals withholds it:
  // one late timer never costs a keep-alive, a loop stuck for a quarter of
  // the watchdog time does.
  const Duration probe_every = std::max(*watchdog_ / 8, kMinProbe);
  const Duration bound = std::max(*watchdog_ / 4, 2 * kMinProbe);
  TimePoint now = steady_now();
  TimePoint next_probe = now;
  TimePoint next_ping = now + probe_every;  // the first probe has answered by then
  std::string withheld;                     // why the last keep-alive was withheld
  std::unique_lock lk(mu_);
  while (!stop_thread_) {
    lk.unlock();
    now = steady_now();
    if (now >= next_probe) {
      engine_.probe_alive();
      next_probe = now + probe_every;
    }
    if (now >= next_ping) {
      const std::int64_t ops_us = ops_alive_us_.load(std::memory_order_acquire);
      std::optional<TimePoint> ops;
      if (ops_us != 0) ops = TimePoint{Duration{ops_us}};
      std::string dead = loops_dead(now, ops, engine_.last_alive(), bound);
      if (dead.empty()) {
        if (send_unless_stopped("WATCHDOG=1") && !withheld.empty() && log_) {
          log_->info("systemd: watchdog keep-alive resumed");
        }
        withheld.clear();
        next_ping = now + period;
      } else {
        // Retried at every probe: the first keep-alive after a loop recovers
        // goes out at once.
        if (withheld.empty() && log_) log_->warn("systemd: watchdog keep-alive withheld: {}", dead);
        withheld = std::move(dead);
        next_ping = next_probe;
      }
    }
    lk.lock();
    cv_.wait_until(lk, std::chrono::steady_clock::time_point(std::min(next_probe, next_ping)),
                   [this] { return stop_thread_; });
  }
}

void SystemdNotifier::stop_watchdog() {
  {
    std::lock_guard lk(mu_);
    stop_thread_ = true;
  }
  cv_.notify_all();
  if (watchdog_thread_.joinable()) watchdog_thread_.join();
}

void SystemdNotifier::stopping(std::string_view why) {
  if (!enabled()) return;
  {
    std::lock_guard lk(mu_);
    if (!stopped_) {
      stopped_ = true;
      try {
        notifier_.send("STOPPING=1\n" + sd::status_field(why));
      } catch (...) {
        notifier_.notify_stopping();
      }
    }
  }
  stop_watchdog();
}

// Before the first READY=1 a reload is part of the start: systemd hears
// nothing of it, and READY=1 still waits for the first verdicts.
void SystemdNotifier::reloading() {
  if (!enabled() || !ready_) return;
  std::lock_guard lk(mu_);
  if (!stopped_) notifier_.notify_reloading();
}

void SystemdNotifier::reloaded() {
  if (!enabled() || !ready_) return;
  std::lock_guard lk(mu_);
  if (!stopped_) notifier_.notify_ready();
}

}  // namespace beacon::app
