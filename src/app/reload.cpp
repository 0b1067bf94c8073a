// Reload orchestration (see reload.hpp). Ops loop.
#include "beacon/app/reload.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <boost/asio/post.hpp>
#include <ctime>
#include <utility>

#include "beacon/ctl/protocol.hpp"

namespace beacon::app {
namespace {

using nlohmann::json;

double ms(core::Duration d) {
  return static_cast<double>(d.count()) / 1000.0;
}

std::string iso_utc(std::chrono::system_clock::time_point t) {
  const std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  ::gmtime_r(&tt, &tm);
  return fmt::format("{:%Y-%m-%dT%H:%M:%SZ}", tm);
}

json named_json(const config::NamedDiff& n) {
  return json{{"added", n.added},
              {"removed", n.removed},
              {"changed", n.changed},
              {"unchanged", n.unchanged.size()}};
}

}  // namespace

json ReloadOutcome::to_json() const {
  json j{{"errors", errors},   {"warnings", warnings}, {"changes", changes},
         {"summary", summary}, {"trigger", trigger},   {"duration_ms", ms(duration)}};
  if (ok || !engine.errors.empty() || engine.applied) {
    j["sessions"] = json{{"added", engine.added},
                         {"removed", engine.removed},
                         {"params_changed", engine.params_changed},
                         {"timers_changed", engine.timers_changed},
                         {"moved", engine.moved},
                         {"unchanged", engine.unchanged},
                         {"dynamic_removed", engine.dynamic_removed}};
    j["accept_rules"] = diff.accepts_changed ? "replaced" : "unchanged";
    j["checks"] = named_json(diff.checks);
    j["groups"] = named_json(diff.groups);
  }
  return j;
}

json progress_to_json(const engine::ReloadProgress& p) {
  return json{{"removing", p.removing}, {"polls", p.polls}, {"settled", p.settled()}};
}

json stats_to_json(const ReloadStats& s) {
  json j{{"ok", s.ok},
         {"failed", s.failed},
         {"last_ok", s.last_ok},
         {"last_message", s.last_message},
         {"last_duration_ms", ms(s.last_duration)}};
  if (s.last_at) {
    j["last_at"] = iso_utc(*s.last_at);
    j["last_at_unix"] = std::chrono::duration<double>(s.last_at->time_since_epoch()).count();
  } else {
    j["last_at"] = nullptr;
  }
  return j;
}

Reloader::Reloader(std::string path, config::Config running, ReloadHooks hooks,
                   std::shared_ptr<spdlog::logger> log)
    : path_(std::move(path)),
      running_(std::move(running)),
      hooks_(std::move(hooks)),
      log_(std::move(log)) {}

engine::ReloadProgress Reloader::progress() const {
  return hooks_.progress ? hooks_.progress() : engine::ReloadProgress{};
}

void Reloader::fail(ReloadOutcome& out, core::TimePoint t0) {
  out.ok = false;
  out.duration = hooks_.now() - t0;
  ++stats_.failed;
  stats_.last_ok = false;
  stats_.last_at = hooks_.wall();
  stats_.last_duration = out.duration;
  stats_.last_message = out.errors.empty() ? "failed" : out.errors.front();
  if (log_) {
    log_->error("reload ({}) failed: {} error(s); the running configuration stays in force",
                out.trigger, out.errors.size());
  }
}

ReloadOutcome Reloader::reload(std::string_view trigger) {
  ReloadOutcome out = attempt(trigger);
  if (hooks_.finished) {
    try {
      hooks_.finished();
    } catch (const std::exception& e) {
      if (log_) log_->error("reload: after-reload hook failed: {}", e.what());
    }
  }
  return out;
}

ReloadOutcome Reloader::attempt(std::string_view trigger) {
  ReloadOutcome out;
  out.trigger = std::string(trigger);
  const core::TimePoint t0 = hooks_.now();
  try {
    if (log_) log_->info("reload ({}): reading {}", out.trigger, path_);
    config::LoadResult loaded = hooks_.load(path_);
    if (!loaded.errors.empty() || !loaded.config) {
      for (const auto& e : loaded.errors) {
        out.errors.push_back(e.format());
        if (log_) log_->error("reload: {}", e.format());
      }
      if (out.errors.empty()) out.errors.push_back(path_ + ": configuration could not be loaded");
      fail(out, t0);
      return out;
    }
    const config::Config& next = *loaded.config;
    out.diff = config::diff(running_, next);
    config::Config effective = config::effective_after_reload(running_, next);
    out.warnings = out.diff.needs_restart;
    if (out.diff.access_changed && running_.daemon.read_group != next.daemon.read_group) {
      out.warnings.push_back("needs a restart: the control socket's file group stays \"" +
                             running_.daemon.read_group +
                             "\" (read_group now decides who may read)");
    }

    if (hooks_.reloading) hooks_.reloading();
    out.engine = hooks_.engine(effective);
    if (!out.engine.applied) {
      for (const auto& e : out.engine.errors) out.errors.push_back(e);
      if (out.errors.empty()) out.errors.push_back("the engine refused the configuration");
      if (log_) {
        for (const auto& e : out.errors) log_->error("reload: {}", e);
      }
      if (hooks_.reloaded) hooks_.reloaded();
      fail(out, t0);
      return out;
    }
    // Additions that failed to open (e.g. a bind error) do not undo the rest.
    for (const auto& e : out.engine.errors) out.warnings.push_back(e);
    out.changes = out.engine.messages;

    health::ReconfigureResult h = hooks_.health(effective);
    if (!h.applied) {
      // The engine side is in force; the checks and groups stay as they were.
      for (const auto& e : h.errors) out.errors.push_back("health: " + e);
      effective.checks = running_.checks;
      effective.groups = running_.groups;
    }
    for (const auto& m : h.messages) out.changes.push_back(m);
    if (out.diff.access_changed && hooks_.access) hooks_.access(effective);
    if (running_.daemon.log_level != effective.daemon.log_level && hooks_.log_level) {
      hooks_.log_level(effective.daemon.log_level);
    }
    for (const auto& a : out.diff.applied) out.changes.push_back(a);
    running_ = std::move(effective);
    if (hooks_.reloaded) hooks_.reloaded();

    out.summary = out.diff.summary();
    if (!out.errors.empty()) {
      if (log_) {
        for (const auto& e : out.errors) log_->error("reload: {}", e);
      }
      fail(out, t0);
      return out;
    }
    out.ok = true;
    out.duration = hooks_.now() - t0;
    ++stats_.ok;
    stats_.last_ok = true;
    stats_.last_at = hooks_.wall();
    stats_.last_duration = out.duration;
    stats_.last_message = out.summary;
    if (log_) {
      for (const auto& w : out.warnings) log_->warn("reload: {}", w);
      for (const auto& c : out.changes) log_->info("reload: {}", c);
      log_->info("reload ({}) done in {:.1f} ms: {}", out.trigger, ms(out.duration), out.summary);
    }
  } catch (const std::exception& e) {
    out.errors.push_back(std::string("reload failed: ") + e.what());
    fail(out, t0);
  }
  return out;
}

void Reloader::request_from_signal(boost::asio::io_context& ops) {
  if (signal_queued_.exchange(true)) {
    if (log_) log_->info("SIGHUP: a reload is already queued");
    return;
  }
  boost::asio::post(ops, [this] {
    signal_queued_.store(false);  // a SIGHUP from now on queues the next one
    reload("SIGHUP");
  });
}

void Reloader::register_commands(ctl::Dispatcher& d) {
  d.add("reload", {[this](const json& req) {
                     bool wait = false;
                     if (auto it = req.find("wait"); it != req.end()) {
                       if (!it->is_boolean())
                         throw ctl::RequestError("field 'wait' must be a boolean");
                       wait = it->get<bool>();
                     }
                     const ReloadOutcome o = reload("bfdctl");
                     json out = o.to_json();
                     out["config"] = path_;
                     if (!o.ok) {
                       out["ok"] = false;
                       out["error"] = o.errors.size() == 1
                                          ? o.errors.front()
                                          : fmt::format("configuration not reloaded: {} errors",
                                                        o.errors.size());
                       return out;
                     }
                     if (wait) {
                       const engine::ReloadProgress p = progress();
                       out["settled"] = p.settled();
                       out["pending"] = progress_to_json(p);
                     }
                     return out;
                   },
                   {"wait"},
                   ctl::Access::Admin});
  d.add("reload-status", {[this](const json&) {
                            return json{{"config", path_},
                                        {"progress", progress_to_json(progress())},
                                        {"reloads", stats_to_json(stats_)}};
                          },
                          {},
                          ctl::Access::Read});
}

}  // namespace beacon::app
