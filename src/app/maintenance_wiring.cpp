// maintenance / drain / undrain / drain-status commands and the connection
// sampler. See maintenance_wiring.hpp.
#include "beacon/app/maintenance_wiring.hpp"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <utility>

#include "beacon/health/probe.hpp"

namespace beacon::app {
namespace {

namespace asio = boost::asio;
using nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

constexpr auto kSampleEvery = std::chrono::milliseconds(250);
constexpr auto kWantedFor = std::chrono::seconds(5);
constexpr core::Duration kQueryTimeout{500'000};
constexpr std::size_t kMaxReason = 200;
constexpr double kStaleMs = 2000;

constexpr const char* kNoWayToCount =
    "no way to count connections: set [drain] haproxy_socket or add a haproxy-socket [[check]]";

double ms_between(SteadyClock::time_point a, SteadyClock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

std::string optional_string(const json& req, const char* key) {
  auto it = req.find(key);
  if (it == req.end()) return {};
  if (!it->is_string())
    throw ctl::RequestError(std::string("field '") + key + "' must be a string");
  return it->get<std::string>();
}

// Reason text: printable, bounded (it goes into logs, the state file and
// every session's hold reason).
std::string clean_reason(const json& req) {
  std::string r = optional_string(req, "reason");
  if (r.size() > kMaxReason) {
    throw ctl::RequestError("field 'reason' is longer than " + std::to_string(kMaxReason) +
                            " bytes");
  }
  for (char& c : r) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  }
  return r;
}

std::vector<std::string> known_groups(const config::Config& cfg) {
  std::vector<std::string> out;
  auto add = [&out](const std::string& g) {
    if (std::find(out.begin(), out.end(), g) == out.end()) out.push_back(g);
  };
  for (const auto& g : cfg.groups) add(g.name);
  for (const auto& s : cfg.sessions) add(s.group);
  for (const auto& a : cfg.accepts) add(a.group);
  return out;
}

// "all" or a group the configuration knows; `entries` (turning off): a scope
// still in maintenance is accepted too, so maintenance of a group a reload
// removed can always be ended.
std::string parse_scope(const json& req, const config::Config& cfg,
                        const std::vector<MaintenanceEntry>& entries = {}) {
  auto it = req.find("group");
  if (it == req.end()) return "all";
  if (!it->is_string()) throw ctl::RequestError("field 'group' must be a string");
  const std::string g = it->get<std::string>();
  if (g.empty()) throw ctl::RequestError("field 'group' must not be empty");
  if (g == "all") throw ctl::RequestError("give no group for all sessions ('all' is not a group)");
  const auto known = known_groups(cfg);
  const bool held = std::any_of(entries.begin(), entries.end(),
                                [&](const MaintenanceEntry& e) { return e.scope == g; });
  if (!held && std::find(known.begin(), known.end(), g) == known.end()) {
    std::string list;
    for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
    throw ctl::RequestError("unknown group '" + g.substr(0, 64) + "' (known: " + list + ")");
  }
  return g;
}

MaintenanceCaller caller_of(const ctl::Caller* c) {
  MaintenanceCaller who;
  if (c == nullptr || !c->credentials.known) return who;
  who.uid = c->credentials.uid;
  who.user = c->user.empty() ? ctl::user_name(c->credentials.uid) : c->user;
  return who;
}

json entry_json(const MaintenanceEntry& e) {
  return json{
      {"scope", e.scope},   {"uid", e.uid ? json(*e.uid) : json(nullptr)},
      {"user", e.user},     {"since", e.since},
      {"reason", e.reason}, {"origin", origin_name(e.origin)},
      {"drain", e.drain},   {"drain_started", e.drain ? json(e.drain_started) : json(nullptr)}};
}

json entries_json(const std::vector<MaintenanceEntry>& entries) {
  json out = json::array();
  for (const auto& e : entries) out.push_back(entry_json(e));
  return out;
}

std::string scope_text(const std::string& scope) {
  return scope == "all" ? std::string("all sessions") : "group " + scope;
}

}  // namespace

// ================================================================ sampler

ConnectionSource connection_source(const config::Config& cfg) {
  if (!cfg.drain.haproxy_socket.empty()) {
    return {cfg.drain.haproxy_socket, "[drain] haproxy_socket", cfg.drain.frontends};
  }
  for (const auto& c : cfg.checks) {
    if (c.type == config::CheckType::HaproxySocket && !c.socket.empty()) {
      return {c.socket, "check " + c.name, cfg.drain.frontends};
    }
  }
  return {};
}

struct ConnectionSampler::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::io_context& io, ConnectionSampler& o, std::shared_ptr<spdlog::logger> l)
      : ops(io), owner(&o), log(std::move(l)), timer(io) {}

  asio::io_context& ops;
  ConnectionSampler* owner;  // null after stop()
  std::shared_ptr<spdlog::logger> log;
  asio::steady_timer timer;
  std::unique_ptr<health::Probe> probe;
  bool running = false;  // a query is outstanding
  bool ticking = false;  // the timer is armed
  bool draining = false;
  SteadyClock::time_point wanted_until{};

  bool active() const { return draining || SteadyClock::now() < wanted_until; }

  void kick() {
    if (owner == nullptr || !owner->available()) return;
    if (!running) query();
    if (!ticking) arm();
  }

  void arm() {
    ticking = true;
    timer.expires_after(kSampleEvery);
    timer.async_wait([w = weak_from_this()](boost::system::error_code ec) {
      auto self = w.lock();
      if (!self) return;
      self->ticking = false;
      if (ec || self->owner == nullptr || !self->active()) return;
      if (!self->running) self->query();
      self->arm();
    });
  }

  void query() {
    if (!probe) {
      probe = health::make_haproxy_connection_counter(ops.get_executor(), owner->source_.socket,
                                                      kQueryTimeout, owner->source_.frontends);
    }
    running = true;
    const auto started = SteadyClock::now();
    probe->run([w = weak_from_this(), started](health::Result r) {
      auto self = w.lock();
      if (!self || self->owner == nullptr) return;
      self->running = false;
      Sample s;
      s.at = std::chrono::system_clock::now();
      s.steady_at = SteadyClock::now();
      s.latency = std::chrono::duration_cast<core::Duration>(s.steady_at - started);
      if (r.status == health::Status::Pass && r.current_connections) {
        s.connections = r.current_connections;
      } else {
        s.error = r.reason.empty() ? "no answer" : r.reason;
        if (self->log && (!self->owner->last_ || self->owner->last_->connections)) {
          self->log->warn("drain: cannot count connections on {}: {}", self->owner->source_.socket,
                          s.error);
        }
      }
      self->owner->last_ = std::move(s);
    });
  }
};

ConnectionSampler::ConnectionSampler(asio::io_context& ops, ConnectionSource source,
                                     std::shared_ptr<spdlog::logger> log)
    : source_(std::move(source)) {
  impl_ = std::make_shared<Impl>(ops, *this, std::move(log));
}

ConnectionSampler::~ConnectionSampler() {
  stop();
}

void ConnectionSampler::want() {
  if (!impl_->owner) return;
  impl_->wanted_until = SteadyClock::now() + kWantedFor;
  impl_->kick();
}

void ConnectionSampler::set_draining(bool on) {
  if (!impl_->owner) return;
  // A count from before the drain began says nothing about it: forget it, so
  // nobody mistakes an old "0" for "drained".
  if (on && !impl_->draining) last_.reset();
  impl_->draining = on;
  if (on) impl_->kick();
}

bool ConnectionSampler::draining() const {
  return impl_->owner != nullptr && impl_->draining;
}

bool resume_drains(ConnectionSampler& sampler, const MaintenanceStore& store) {
  const bool any = std::any_of(store.entries().begin(), store.entries().end(),
                               [](const MaintenanceEntry& e) { return e.drain; });
  sampler.set_draining(any);
  return any;
}

void ConnectionSampler::stop() {
  if (!impl_ || impl_->owner == nullptr) return;
  impl_->owner = nullptr;
  impl_->timer.cancel();
  if (impl_->probe) impl_->probe->cancel();
}

json drain_status_json(const ConnectionSampler& sampler,
                       const std::vector<MaintenanceEntry>& entries,
                       std::chrono::system_clock::time_point now) {
  json drains = json::array();
  for (const auto& e : entries) {
    if (!e.drain) continue;
    // origin "state-file": a drain restored after a restart, still counted.
    drains.push_back(json{{"scope", e.scope},
                          {"started", e.drain_started},
                          {"reason", e.reason},
                          {"origin", origin_name(e.origin)}});
  }
  json out{{"draining", !drains.empty()}, {"drains", std::move(drains)}};
  out["now"] = rfc3339_utc(now);
  if (!sampler.available()) {
    out["connections"] = nullptr;
    out["source"] = nullptr;
    out["reason"] = kNoWayToCount;
    return out;
  }
  const ConnectionSource& src = sampler.source();
  std::string method = "show stat: current sessions (scur) summed over ";
  if (src.frontends.empty()) {
    method += "every frontend";
  } else {
    method += "frontends ";
    for (std::size_t i = 0; i < src.frontends.size(); ++i) {
      method += (i == 0 ? "" : ", ") + src.frontends[i];
    }
  }
  out["source"] = json{{"socket", src.socket},
                       {"from", src.how},
                       {"frontends", src.frontends.empty() ? json("all") : json(src.frontends)},
                       {"method", method}};
  const auto& last = sampler.last();
  // A count older than this was taken while nobody was watching (the sampler
  // idles): a fresh one is on its way.
  const bool stale = last && ms_between(last->steady_at, SteadyClock::now()) > kStaleMs;
  if (!last || stale) {
    out["connections"] = nullptr;
    out["pending"] = true;
    out["reason"] = "first count requested; ask again";
    return out;
  }
  out["connections"] = last->connections ? json(*last->connections) : json(nullptr);
  if (!last->connections) out["reason"] = "haproxy socket " + src.socket + ": " + last->error;
  out["obtained_at"] = rfc3339_utc(last->at);
  out["age_ms"] = std::max(0.0, ms_between(last->steady_at, SteadyClock::now()));
  out["query_ms"] = std::chrono::duration<double, std::milli>(last->latency).count();
  return out;
}

// ================================================================ commands

void register_maintenance_commands(ctl::Dispatcher& d, MaintenanceStore& store,
                                   ConnectionSampler& sampler, const config::Config& cfg,
                                   MaintenanceDeps deps, std::shared_ptr<spdlog::logger> log) {
  if (!deps.now) deps.now = [] { return std::chrono::system_clock::now(); };
  auto shared = std::make_shared<MaintenanceDeps>(std::move(deps));
  auto drains_running = [&store] {
    return std::any_of(store.entries().begin(), store.entries().end(),
                       [](const auto& e) { return e.drain; });
  };

  // Applies the store's scopes to the engine and builds the common answer.
  // `hr`: the engine's answer when it was already told (maintenance on).
  auto apply = [&store, &sampler, shared, log, drains_running](
                   const std::string& scope, const MaintenanceStore::ChangeResult& ch,
                   const std::string& state, std::optional<engine::HoldResult> hr) {
    if (!hr) hr = shared->set_maintenance(store.scopes());
    sampler.set_draining(drains_running());
    json out{{"state", state},
             {"scope", scope},
             {"sessions_in_maintenance", hr->matched},
             {"persisted", ch.persisted},
             {"state_file", store.path()},
             {"maintenance", entries_json(store.entries())}};
    if (!ch.still.empty()) {
      out["note"] = scope_text(scope) + " is still in maintenance: maintenance for all is on";
    }
    if (!ch.persisted) {
      out["ok"] = false;
      out["applied"] = true;
      out["error"] = "maintenance is on for " + scope_text(scope) +
                     " but will not survive a restart: the state file could not be written (" +
                     ch.error + ")";
      if (log) log->error("maintenance: {}", out["error"].get<std::string>());
    }
    return out;
  };

  auto turn_on = [&store, &cfg, apply, shared](const json& req, const ctl::Caller* caller,
                                               bool drain) {
    const std::string scope = parse_scope(req, cfg);
    const std::string reason = clean_reason(req);
    // The engine first, the disk after: the routers withdraw this box before
    // the fsyncs, which may take a while on a busy disk.
    std::optional<engine::HoldResult> hr;
    auto ch = store.set_on(scope, caller_of(caller), reason, drain,
                           [&] { hr = shared->set_maintenance(store.scopes()); });
    return apply(scope, ch, "on", hr);
  };
  auto turn_off = [&store, &cfg, apply](const json& req) {
    const std::string scope = parse_scope(req, cfg, store.entries());
    auto ch = store.set_off(scope);
    if (ch.refused) {
      throw ctl::RequestError(
          "maintenance stays on: the state file could not be written (" + ch.error +
          "); 'off' takes effect only once it is on disk, so a restart cannot bring the old "
          "state back");
    }
    return apply(scope, ch, "off", std::nullopt);
  };

  ctl::Dispatcher::Command maint{nullptr, {"state", "group", "reason"}, ctl::Access::Admin};
  maint.caller_handler = [turn_on, turn_off](const json& req, const ctl::Caller* caller) {
    auto it = req.find("state");
    if (it == req.end() || !it->is_string()) {
      throw ctl::RequestError("field 'state' must be \"on\" or \"off\"");
    }
    const std::string st = it->get<std::string>();
    if (st == "on") return turn_on(req, caller, false);
    if (st == "off") {
      if (req.contains("reason")) clean_reason(req);  // validated, not stored
      return turn_off(req);
    }
    throw ctl::RequestError("invalid state '" + st.substr(0, 32) + "': expected on or off");
  };
  d.add("maintenance", std::move(maint));

  ctl::Dispatcher::Command drain{nullptr, {"group", "reason"}, ctl::Access::Admin};
  drain.caller_handler = [turn_on, &sampler, &store, shared](const json& req,
                                                             const ctl::Caller* caller) {
    json out = turn_on(req, caller, true);
    sampler.want();
    out["drain"] = drain_status_json(sampler, store.entries(), shared->now());
    return out;
  };
  d.add("drain", std::move(drain));

  d.add("undrain",
        {[turn_off](const json& req) { return turn_off(req); }, {"group"}, ctl::Access::Admin});

  d.add("drain-status", {[&sampler, &store, shared](const json&) {
                           sampler.want();
                           return drain_status_json(sampler, store.entries(), shared->now());
                         },
                         {},
                         ctl::Access::Read});

  d.add("status", {[&sampler, &store, &cfg, shared](const json&) {
                     sampler.want();
                     StatusInput in;
                     in.sessions = shared->sessions ? shared->sessions()
                                                    : std::vector<engine::SessionSnapshot>{};
                     if (shared->checks) in.checks = shared->checks();
                     if (shared->groups) in.groups = shared->groups();
                     in.maintenance = store.entries();
                     in.state_file = store.path();
                     in.state_file_damaged = store.damaged();
                     in.now = shared->now();
                     in.drain = drain_status_json(sampler, store.entries(), in.now);
                     for (const auto& g : cfg.groups) in.declared_groups.push_back(g.name);
                     return build_status(in);
                   },
                   {},
                   ctl::Access::Read});
}

}  // namespace beacon::app
