// bfd-beacon's metric families (see collector.hpp). Names carry the prefix
// bfd_beacon_, base units (seconds, bytes) and _total on counters. Every
// per-session series has the labels peer, local, interface, group and
// multihop ("true"/"false"). State-like values are one series per possible
// value, the current one 1 (session_state, check_status, group_verdict, ...),
// so a dashboard can sum or select without parsing label values.
#include "beacon/metrics/collector.hpp"

#include <prometheus/text_serializer.h>

#include <chrono>
#include <utility>

#include "beacon/config/config.hpp"
#include "beacon/core/wire.hpp"

namespace beacon::metrics {
namespace {

namespace pm = prometheus;
using core::wire::DropReason;
using core::wire::State;
using Labels = std::vector<pm::ClientMetric::Label>;

constexpr std::string_view kPrefix = "bfd_beacon_";

double seconds(core::Duration d) {
  return std::chrono::duration<double>(d).count();
}

double unix_seconds(WallTime t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

// Lower-case, as bfdctl writes states on its command line.
std::string state_label(State s) {
  switch (s) {
    case State::AdminDown:
      return "admin-down";
    case State::Down:
      return "down";
    case State::Init:
      return "init";
    case State::Up:
      return "up";
  }
  return "down";
}

std::string signal_label(core::Hold h) {
  return h == core::Hold::None ? "up" : std::string(core::hold_name(h));
}

// One family under construction.
class Family {
 public:
  Family(std::string_view name, std::string help, pm::MetricType type, bool prefixed = true) {
    f_.name = (prefixed ? std::string(kPrefix) : std::string()) + std::string(name);
    f_.help = std::move(help);
    f_.type = type;
  }
  void add(Labels labels, double value) {
    pm::ClientMetric m;
    m.label = std::move(labels);
    switch (f_.type) {
      case pm::MetricType::Counter:
        m.counter.value = value;
        break;
      case pm::MetricType::Gauge:
        m.gauge.value = value;
        break;
      default:
        m.untyped.value = value;
        break;
    }
    f_.metric.push_back(std::move(m));
  }
  template <class H>
  void add_histogram(Labels labels, const H& h) {
    pm::ClientMetric m;
    m.label = std::move(labels);
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < H::kBoundsUs.size(); ++i) {
      cumulative += h.counts[i];
      m.histogram.bucket.push_back(
          {cumulative, static_cast<double>(H::kBoundsUs[i]) / 1e6});  // +Inf: the serializer
    }
    m.histogram.sample_count = h.count;
    m.histogram.sample_sum = seconds(h.sum);
    f_.metric.push_back(std::move(m));
  }
  void move_into(std::vector<pm::MetricFamily>& out) {
    // A family without samples is left out: an empty # TYPE block says nothing.
    if (!f_.metric.empty()) out.push_back(std::move(f_));
  }

 private:
  pm::MetricFamily f_;
};

Labels with(Labels base, std::string name, std::string value) {
  base.push_back({std::move(name), std::move(value)});
  return base;
}

Labels session_labels(const engine::SessionSnapshot& s) {
  return Labels{{"peer", s.peer},
                {"local", s.local},
                {"interface", s.interface},
                {"group", s.group},
                {"multihop", s.multihop ? "true" : "false"}};
}

void add_sessions(const engine::EngineSnapshot& snap, std::vector<pm::MetricFamily>& out) {
  using T = pm::MetricType;
  Family state("session_state", "Local session state (RFC 5880): 1 for the current one", T::Gauge);
  Family remote("session_remote_state", "Last state the peer reported: 1 for the current one",
                T::Gauge);
  Family up("session_up", "1 while the session is Up", T::Gauge);
  Family ldiag("session_local_diag", "Local diagnostic code (RFC 5880 section 4.1)", T::Gauge);
  Family rdiag("session_remote_diag", "Diagnostic code the peer sent", T::Gauge);
  Family detect("session_detect_time_seconds", "Detection time in use (0 until the peer is heard)",
                T::Gauge);
  Family tx("session_tx_interval_seconds", "Negotiated transmit interval (before jitter)",
            T::Gauge);
  Family rx("session_rx_interval_seconds",
            "Negotiated receive interval: detection time / the peer's detect multiplier", T::Gauge);
  Family changed("session_last_change_timestamp_seconds",
                 "Wall-clock time of the last state change", T::Gauge);
  Family flaps("session_flaps_total", "Transitions out of Up by cause", T::Counter);
  Family sent("session_packets_sent_total", "Control packets sent", T::Counter);
  Family received("session_packets_received_total", "Control packets accepted", T::Counter);
  Family drops("session_drops_total", "Received packets dropped, charged to this session",
               T::Counter);
  Family gap("session_rx_gap_seconds", "Time between two accepted packets of the peer",
             T::Histogram);
  Family late("session_tx_lateness_seconds",
              "How late each periodic packet left against its deadline", T::Histogram);
  for (const auto& s : snap.sessions) {
    const Labels l = session_labels(s);
    for (State st : core::kStates) {
      state.add(with(l, "state", state_label(st)), s.state == st ? 1 : 0);
      remote.add(with(l, "state", state_label(st)), s.remote_state == st ? 1 : 0);
    }
    up.add(l, s.state == State::Up ? 1 : 0);
    ldiag.add(l, s.local_diag);
    rdiag.add(l, s.remote_diag);
    detect.add(l, seconds(s.detection_time));
    tx.add(l, seconds(s.tx_interval));
    rx.add(l, s.remote_detect_mult == 0
                  ? 0.0
                  : seconds(s.detection_time) / static_cast<double>(s.remote_detect_mult));
    changed.add(l, unix_seconds(snap.anchor_wall + std::chrono::duration_cast<WallTime::duration>(
                                                       s.last_change - snap.anchor_steady)));
    for (std::size_t c = 0; c < core::kFlapCauseCount; ++c) {
      flaps.add(
          with(l, "cause", std::string(core::flap_cause_name(static_cast<core::FlapCause>(c)))),
          static_cast<double>(s.counters.flaps[c]));
    }
    sent.add(l, static_cast<double>(s.counters.tx_packets));
    received.add(l, static_cast<double>(s.counters.rx_packets));
    for (DropReason r : core::kSessionDropReasons) {
      drops.add(with(l, "reason", std::string(core::wire::drop_reason_name(r))),
                static_cast<double>(s.counters.drops[static_cast<std::size_t>(r)]));
    }
    gap.add_histogram(l, s.counters.rx_gap);
    late.add_histogram(l, s.counters.tx_lateness);
  }
  for (Family* f : {&state, &remote, &up, &ldiag, &rdiag, &detect, &tx, &rx, &changed, &flaps,
                    &sent, &received, &drops, &gap, &late}) {
    f->move_into(out);
  }
}

void add_engine(const engine::EngineSnapshot& snap, core::TimePoint now,
                std::vector<pm::MetricFamily>& out) {
  using T = pm::MetricType;
  const engine::EngineStats& st = snap.stats;
  Family drops("drops_total", "Received datagrams dropped, by reason", T::Counter);
  for (std::size_t i = 1; i < core::wire::kDropReasonCount; ++i) {  // 0 is None
    drops.add({{"reason", std::string(core::wire::drop_reason_name(static_cast<DropReason>(i)))}},
              static_cast<double>(st.drops[i]));
  }
  drops.move_into(out);
  Family late("timer_lateness_seconds", "How late each engine timer fire was against its deadline",
              T::Histogram);
  late.add_histogram({}, st.timer_lateness);
  late.move_into(out);
  Family sessions("sessions", "Sessions by local state", T::Gauge);
  std::array<std::uint64_t, 4> by_state{};
  for (const auto& s : snap.sessions) ++by_state[static_cast<std::size_t>(s.state)];
  for (State s : core::kStates) {
    sessions.add({{"state", state_label(s)}},
                 static_cast<double>(by_state[static_cast<std::size_t>(s)]));
  }
  sessions.move_into(out);
  auto counter = [&out](std::string_view name, std::string help, std::uint64_t v) {
    Family f(name, std::move(help), T::Counter);
    f.add({}, static_cast<double>(v));
    f.move_into(out);
  };
  counter("passive_sessions_created_total", "Sessions created by [[accept]] rules",
          st.passive_created);
  counter("passive_sessions_refused_total",
          "Packets an [[accept]] rule matched that created no session (cap, rate limit)",
          st.passive_refused);
  counter("passive_sessions_removed_total", "Dynamic sessions removed after their peer went silent",
          st.passive_removed);
  counter("rx_datagrams_total", "Datagrams received on the BFD ports", st.rx_datagrams);
  counter("tx_packets_total", "Control packets sent", st.tx_packets);
  counter("tx_errors_total", "Control packets that could not be sent", st.tx_errors);
  counter("rx_kernel_drops_total", "Datagrams the kernel dropped: a listener's queue was full",
          st.rx_kernel_drops);
  counter("failsafe_trips_total", "Times the health heartbeat stalled and the fail-safe held",
          st.failsafe_trips);
  Family age("engine_snapshot_age_seconds",
             "Age of the engine snapshot this scrape shows (grows if the engine loop stalls)",
             T::Gauge);
  age.add({}, seconds(std::max(now - snap.taken, core::Duration{0})));
  age.move_into(out);
}

Labels check_labels(const health::CheckStatus& c) {
  return Labels{{"check", c.name}, {"type", c.type}};
}

void add_health(const OpsSnapshot& ops, std::vector<pm::MetricFamily>& out) {
  using T = pm::MetricType;
  Family status("check_status",
                "Stable state of a health check: 1 for the current one (unknown: no result yet)",
                T::Gauge);
  Family duration("check_duration_seconds", "Run time of a polled health check", T::Histogram);
  Family failures("check_failures_total", "Failed results of a health check", T::Counter);
  Family conns("haproxy_current_connections",
               "HAProxy's current connections, as the haproxy-socket check last read them",
               T::Gauge);
  for (const auto& c : ops.checks) {
    const Labels l = check_labels(c);
    const std::string current = c.known ? std::string(health::status_name(c.state)) : "unknown";
    for (std::string_view s : {"pass", "fail", "maintenance", "unknown"}) {
      status.add(with(l, "status", std::string(s)), current == s ? 1 : 0);
    }
    if (!c.event_driven) duration.add_histogram(l, c.durations);
    failures.add(l, static_cast<double>(c.failures));
    if (config::parse_check_type(c.type) == config::CheckType::HaproxySocket &&
        c.current_connections) {
      conns.add({{"check", c.name}}, static_cast<double>(*c.current_connections));
    }
  }
  for (Family* f : {&status, &duration, &failures, &conns}) f->move_into(out);

  Family verdict("group_verdict", "Health verdict of a group: 1 for the current one", T::Gauge);
  Family signal("group_signal",
                "State the group's sessions are allowed (up) or held at: 1 for the current one",
                T::Gauge);
  Family maint("group_maintenance", "1 while the group is in maintenance", T::Gauge);
  for (const auto& g : ops.groups) {
    const Labels l{{"group", g.name}};
    for (auto v : {health::Verdict::Unknown, health::Verdict::Healthy, health::Verdict::Unhealthy,
                   health::Verdict::Maintenance}) {
      verdict.add(with(l, "verdict", std::string(health::verdict_name(v))),
                  g.decision.verdict == v ? 1 : 0);
    }
    for (auto h : {core::Hold::None, core::Hold::Down, core::Hold::AdminDown}) {
      signal.add(with(l, "state", signal_label(h)), g.decision.hold == h ? 1 : 0);
    }
    bool in_maintenance = g.decision.verdict == health::Verdict::Maintenance;
    for (const auto& m : ops.maintenance) in_maintenance |= m.group.empty() || m.group == g.name;
    maint.add(l, in_maintenance ? 1 : 0);
  }
  for (Family* f : {&verdict, &signal, &maint}) f->move_into(out);
}

void add_ops(const OpsSnapshot& ops, std::vector<pm::MetricFamily>& out) {
  using T = pm::MetricType;
  Family info("maintenance_info",
              "Operator maintenance in force: 1 per scope, with who set it and why", T::Gauge);
  for (const auto& m : ops.maintenance) {
    info.add({{"group", m.group}, {"reason", m.reason}, {"set_by", m.set_by}, {"source", m.source}},
             1);
  }
  info.move_into(out);
  Family drain("drain_in_progress", "1 while a drain is in progress", T::Gauge);
  drain.add({}, ops.drain_in_progress ? 1 : 0);
  drain.move_into(out);
  Family reloads("config_reloads_total", "Configuration reloads by result", T::Counter);
  reloads.add({{"result", "success"}}, static_cast<double>(ops.reloads.succeeded));
  reloads.add({{"result", "failure"}}, static_cast<double>(ops.reloads.failed));
  reloads.move_into(out);
  if (ops.reloads.last) {
    Family at("config_last_reload_timestamp_seconds", "Wall-clock time of the last reload attempt",
              T::Gauge);
    at.add({}, unix_seconds(*ops.reloads.last));
    at.move_into(out);
    Family ok("config_last_reload_successful", "1 if the last reload succeeded", T::Gauge);
    ok.add({}, ops.reloads.last_ok ? 1 : 0);
    ok.move_into(out);
  }
}

void add_process(const ProcessStats& p, std::vector<pm::MetricFamily>& out) {
  using T = pm::MetricType;
  auto one = [&out](std::string_view name, std::string help, T type, double v) {
    Family f(name, std::move(help), type, false);
    f.add({}, v);
    f.move_into(out);
  };
  one("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", T::Counter,
      p.cpu_seconds);
  one("process_resident_memory_bytes", "Resident memory size in bytes.", T::Gauge,
      p.resident_bytes);
  one("process_virtual_memory_bytes", "Virtual memory size in bytes.", T::Gauge, p.virtual_bytes);
  one("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
      T::Gauge, p.start_time_seconds);
  one("process_open_fds", "Number of open file descriptors.", T::Gauge, p.open_fds);
  if (p.max_fds > 0) {
    one("process_max_fds", "Maximum number of open file descriptors.", T::Gauge, p.max_fds);
  }
  one("process_threads", "Number of OS threads in the process.", T::Gauge, p.threads);
}

}  // namespace

std::vector<pm::MetricFamily> build_families(const Inputs& in) {
  std::vector<pm::MetricFamily> out;
  Family build("build_info", "bfd-beacon's version: always 1", pm::MetricType::Gauge);
  build.add({{"version", in.version}}, 1);
  build.move_into(out);
  if (in.engine) {
    add_sessions(*in.engine, out);
    add_engine(*in.engine, in.now, out);
  }
  if (in.ops) {
    add_health(*in.ops, out);
    add_ops(*in.ops, out);
  }
  if (in.process) add_process(*in.process, out);
  return out;
}

std::string to_text(const std::vector<pm::MetricFamily>& families) {
  return pm::TextSerializer().Serialize(families);
}

Collector::Collector(EngineFn engine, OpsFn ops)
    : engine_(std::move(engine)), ops_(std::move(ops)) {}

std::vector<pm::MetricFamily> Collector::Collect() const {
  Inputs in;
  in.engine = engine_ ? engine_() : nullptr;
  in.ops = ops_ ? ops_() : nullptr;
  in.process = read_process();
  in.now = core::SteadyClock().now();
  in.version = BEACON_VERSION;
  try {
    return build_families(in);
  } catch (...) {
    return {};  // out of memory: an empty scrape, never a dead exposer thread
  }
}

OpsSnapshot gather(const Sources& s) {
  OpsSnapshot o;
  if (s.checks) o.checks = s.checks();
  if (s.groups) o.groups = s.groups();
  if (s.reloads) o.reloads = s.reloads();
  if (s.drain_in_progress) o.drain_in_progress = s.drain_in_progress();
  if (s.maintenance) o.maintenance = s.maintenance();
  return o;
}

}  // namespace beacon::metrics
