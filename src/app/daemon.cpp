// bfd-beacon: configuration, start-up order, signal handling and shutdown.
//
// Threads:
//  - main (this code): blocks SIGTERM/SIGINT/SIGHUP before any other thread
//    starts, so every thread inherits the mask; then waits for them with
//    sigwait. No signal handler ever runs.
//  - engine loop: started by Engine::run(); packets and timers only.
//  - logging: spdlog's one asynchronous writer thread (see make_logger).
//  - ops loop: one io_context on its own thread serving the control socket
//    and running the health manager (probes, rise/fall, group verdicts). It
//    reads the engine's published snapshot (Engine::view, never a wait on
//    the engine loop) and changes it through EngineBackend and the health
//    Sink (blocking posts that return once the change is published); the
//    health manager starts only once the engine runs.
//    Each request and each check contains its own failures; if an exception
//    still ends the loop, the ops thread wakes main (SIGTERM to main only),
//    which sends the shutdown signal to every peer and exits with
//    kExitOpsLoopFailed: a dead control plane must not keep a route.
//  - systemd watchdog (only under systemd with WatchdogSec): sends WATCHDOG=1
//    while the engine loop and the ops loop both prove they are alive; never
//    waits on either (see systemd_wiring.hpp). READY=1 / STATUS= go out from
//    the ops loop, STOPPING=1 from main once a stop signal is taken.
//  - metrics (unless [daemon] metrics_listen = ""): prometheus-cpp's exposer
//    serves scrapes on two threads of its own; they read only the snapshots
//    the engine loop and the ops loop publish (metrics_wiring.hpp) and never
//    post to or wait on either loop.
#include "beacon/app/daemon.hpp"

#include <pthread.h>
#include <signal.h>
#include <spdlog/async.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <exception>
#include <functional>
#include <future>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include "beacon/app/health_wiring.hpp"
#include "beacon/app/maintenance.hpp"
#include "beacon/app/maintenance_wiring.hpp"
#include "beacon/app/metrics_wiring.hpp"
#include "beacon/app/reload.hpp"
#include "beacon/app/sd_notify.hpp"
#include "beacon/app/systemd_wiring.hpp"
#include "beacon/config/config.hpp"
#include "beacon/ctl/cli.hpp"
#include "beacon/ctl/engine_backend.hpp"
#include "beacon/ctl/protocol.hpp"
#include "beacon/ctl/server.hpp"
#include "beacon/engine/engine.hpp"
#include "beacon/health/manager.hpp"

namespace beacon::app {
namespace {

namespace asio = boost::asio;

// The engine loop logs every state change. An asynchronous logger keeps a slow
// stderr (journald back-pressure, a stopped terminal) from ever delaying a BFD
// packet: records go to a bounded queue drained by one thread, and on overflow
// the oldest record is dropped rather than the engine blocking. Call only with
// the stop signals blocked, so the logging thread inherits the mask.
std::shared_ptr<spdlog::logger> make_logger(const std::string& level) {
  auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  spdlog::init_thread_pool(8192, 1);
  auto log = std::make_shared<spdlog::async_logger>("bfd-beacon", sink, spdlog::thread_pool(),
                                                    spdlog::async_overflow_policy::overrun_oldest);
  log->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %^%l%$ %v");
  log->set_level(spdlog::level::from_str(level == "warning" ? "warn" : level));
  log->flush_on(spdlog::level::trace);  // a foreground daemon: lines must not sit in a buffer
  spdlog::set_default_logger(log);
  return log;
}

sigset_t stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  return set;
}

// Blocks until SIGTERM or SIGINT. SIGHUP asks for a reload (run on the ops
// loop; this thread never waits for it).
int wait_for_stop(const sigset_t& set, spdlog::logger& log, const std::function<void()>& reload) {
  for (;;) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) continue;
    if (sig == SIGHUP) {
      log.info("SIGHUP received: reloading the configuration");
      reload();
      continue;
    }
    return sig;
  }
}

// Every session owns a socket: raise the soft descriptor limit to the hard
// one (a default systemd unit gives 1024 soft / 524288 hard), and say what it
// allows, so a large configuration does not fail at session 1,010.
void raise_fd_limit(spdlog::logger& log, std::size_t configured_sessions) {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) {
    log.warn("getrlimit(RLIMIT_NOFILE): {}", std::strerror(errno));
    return;
  }
  if (lim.rlim_cur < lim.rlim_max) {
    const rlim_t before = lim.rlim_cur;
    lim.rlim_cur = lim.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &lim) != 0) {
      log.warn("cannot raise the file descriptor limit from {} to {}: {}", before, lim.rlim_max,
               std::strerror(errno));
      ::getrlimit(RLIMIT_NOFILE, &lim);
    }
  }
  // A few dozen descriptors go to listeners, the control socket, probes and
  // the logger; each session needs one.
  constexpr rlim_t kReserved = 64;
  const rlim_t room = lim.rlim_cur > kReserved ? lim.rlim_cur - kReserved : 0;
  log.info("file descriptor limit {}: room for about {} sessions ({} configured)", lim.rlim_cur,
           room, configured_sessions);
  if (configured_sessions > room) {
    log.warn(
        "more sessions configured ({}) than the descriptor limit allows (about {}); raise "
        "LimitNOFILE",
        configured_sessions, room);
  }
}

int serve(const config::Config& cfg, const std::string& config_path, const sigset_t& signals,
          const std::shared_ptr<spdlog::logger>& log, const sd::Environment& sd_env) {
  std::signal(SIGPIPE, SIG_IGN);
  raise_fd_limit(*log, cfg.sessions.size());
  if (cfg.engine.lock_memory) {
    // Before the threads and the session table exist: MCL_FUTURE covers them.
    if (::mlockall(MCL_CURRENT | MCL_FUTURE) != 0) {
      const int e = errno;
      log->error("startup failed: [engine] lock_memory: mlockall: {}{}", std::strerror(e),
                 e == EPERM || e == ENOMEM ? " (needs CAP_IPC_LOCK or a larger LimitMEMLOCK)" : "");
      return 1;
    }
    log->info("engine: memory locked (mlockall)");
  }

  // Operator maintenance from the state file, in the engine before open()
  // creates any session: a box taken out of rotation stays out across
  // restarts (a damaged file fails closed: maintenance for all).
  MaintenanceStore maintenance(cfg.daemon.state_dir, system_maintenance_io());
  if (auto rep = maintenance.load(); rep.error) {
    log->error("{}", rep.message);
  } else {
    log->info("{}", rep.message);
  }
  engine::Engine engine(cfg, log, maintenance.scopes());
  try {
    engine.open();
  } catch (const engine::StartupError& e) {
    log->error("startup failed: {}", e.what());
    return 1;
  }

  asio::io_context ops;
  ctl::EngineBackend backend(engine);
  ctl::Dispatcher dispatcher(backend);
  // Root, read_group and admin_group decide who may do what; the socket's
  // group is read_group (when it exists) so its members can connect.
  ctl::AccessPolicy access =
      ctl::resolve_access_policy(cfg.daemon.read_group, cfg.daemon.admin_group, *log);
  ctl::ServerOptions server_options{cfg.daemon.control_socket};
  server_options.group = access.read_group.gid;
  dispatcher.enable_access_control(std::move(access), log);
  ctl::Server server(ops, std::move(server_options), dispatcher, log);
  // Declared before `health`, which refers to it through the sink: a group
  // decision change re-evaluates readiness and STATUS=.
  SystemdNotifier systemd(sd_env, ops, engine, log);
  // Also before `health`: a decision change republishes the metrics at once.
  MetricsWiring metrics(cfg, ops, engine, log);
  health::Sink sink = make_engine_sink(engine, log);
  sink.apply = [apply = std::move(sink.apply), &systemd, &metrics](const std::string& group,
                                                                   const health::GroupDecision& d) {
    apply(group, d);
    systemd.poke();
    metrics.poke();
  };
  // Probes are created now (on the ops io_context, not yet running); the
  // engine already holds every health-managed group Down until the first
  // verdict (start-up order).
  std::unique_ptr<health::HealthManager> health;
  try {
    health = std::make_unique<health::HealthManager>(ops, cfg, std::move(sink), log);
  } catch (const std::exception& e) {
    log->error("startup failed: health checks: {}", e.what());
    return 1;
  }
  register_health_commands(dispatcher, *health, [&engine] { return engine.view()->sessions; });
  ConnectionSampler connections(ops, connection_source(cfg), log);
  register_maintenance_commands(dispatcher, maintenance, connections, cfg,
                                MaintenanceDeps{[&engine](std::vector<engine::MaintenanceScope> m) {
                                                  return engine.set_maintenance(std::move(m));
                                                },
                                                [&engine] { return engine.view()->sessions; },
                                                [&health] { return health->checks(); },
                                                [&health] { return health->groups(); }, nullptr},
                                log);
  const std::unique_ptr<Reloader> reloader = make_daemon_reloader(
      config_path, cfg, engine, *health, dispatcher, systemd.enabled() ? &systemd : nullptr, log,
      [&metrics] { metrics.poke(); });
  reloader->register_commands(dispatcher);
  metrics.attach_health(*health);
  // A scrape right after a state change (maintenance, drain, set-state,
  // reload) shows it, instead of up to a second later.
  dispatcher.set_after_change([&metrics] { metrics.poke(); });
  // The operator side of the metrics: reloads, drain, maintenance (ops loop).
  metrics.sources().reloads = [&reloader] {
    const ReloadStats& r = reloader->stats();
    return metrics::ReloadStatus{r.ok, r.failed, r.last_at, r.last_ok};
  };
  metrics.sources().drain_in_progress = [&maintenance] {
    const auto& e = maintenance.entries();
    return std::any_of(e.begin(), e.end(), [](const MaintenanceEntry& m) { return m.drain; });
  };
  metrics.sources().maintenance = [&maintenance] {
    std::vector<metrics::MaintenanceEntry> out;
    for (const auto& m : maintenance.entries()) {
      out.push_back(metrics::MaintenanceEntry{m.scope == "all" ? std::string() : m.scope, m.reason,
                                              m.user, std::string(origin_name(m.origin)),
                                              std::nullopt});
    }
    return out;
  };
  try {
    server.start();
  } catch (const ctl::ServerError& e) {
    log->error("startup failed: {}", e.what());
    return 1;
  }
  if (std::string why = metrics.start_server(); !why.empty()) {
    log->error("startup failed: {}", why);
    return 1;
  }

  // Control reads (sessions, stats, counters, status, STATUS=) come from the
  // published snapshot whether or not metrics are served.
  engine.publish_every(core::kOneSecond);
  engine.run();
  if (std::string rt = engine.apply_realtime(cfg.engine); !rt.empty()) {
    log->error("startup failed: [engine] {}", rt);
    server.stop();
    engine.shutdown(cfg.daemon.shutdown_signal);
    return 1;
  }
  if (cfg.engine.cpu || cfg.engine.realtime_priority > 0) {
    log->info("engine thread: {}{}",
              cfg.engine.cpu ? "cpu " + std::to_string(*cfg.engine.cpu) : std::string("any cpu"),
              cfg.engine.realtime_priority > 0
                  ? ", SCHED_FIFO priority " + std::to_string(cfg.engine.realtime_priority)
                  : std::string());
  }
  // After engine.run(): the sink's set_hold posts to the engine loop and waits.
  // The sockets are bound by now: READY=1 follows the first verdicts.
  asio::post(ops, [&health, &systemd, &connections, &maintenance, &metrics] {
    // A drain recorded in the state file is still in progress.
    resume_drains(connections, maintenance);
    health->start();
    systemd.start(*health);
    metrics.start();
  });
#ifdef BEACON_TEST_HOOKS
  // Fault injection: an exception escaping a handler that no guard contains,
  // i.e. the ops loop itself failing.
  dispatcher.add(
      "debug-fail-ops",
      {[&ops, &log](const nlohmann::json&) {
         log->warn("test hook: failing the ops loop");
         asio::post(ops, [] { throw std::runtime_error("test hook: ops loop forced to fail"); });
         return nlohmann::json{{"failing", true}};
       },
       {}});
#endif
  auto work = asio::make_work_guard(ops);
  std::atomic<bool> ops_failed{false};
  const pthread_t main_thread = pthread_self();
  std::thread ops_thread([&ops, &log, &ops_failed, main_thread] {
    std::string what;
    try {
      ops.run();
      return;  // stopped on purpose (shutdown)
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
      what = "unknown exception";
    }
    log->critical("ops loop failed: {}", what);
    ops_failed.store(true);
    // SIGTERM is blocked everywhere; main's sigwait() takes it.
    pthread_kill(main_thread, SIGTERM);
  });
  systemd.start_watchdog();
  log->info(
      "bfd-beacon {} running: {} configured sessions, {} accept rules, {} checks, {} groups, "
      "control socket {}",
      BEACON_VERSION, cfg.sessions.size(), cfg.accepts.size(), cfg.checks.size(), cfg.groups.size(),
      cfg.daemon.control_socket);

  int sig = wait_for_stop(signals, *log, [&] { reloader->request_from_signal(ops); });
  // From here on the health side stops before the engine: that silence is not
  // a health failure, so the fail-safe must not send Down ahead of the
  // shutdown signal.
  engine.disarm_failsafe();
  if (ops_failed.load()) {
    // The ops thread has ended: joined, the configuration reloads kept is
    // safe to read here (a reload may have changed shutdown_signal).
    ops_thread.join();
    const core::Hold signal = reloader->running().daemon.shutdown_signal;
    systemd.stopping("stopping: ops loop failed; signalling peers (" +
                     std::string(core::hold_name(signal)) + ")");
    log->critical(
        "control socket and health checks are dead: sending the shutdown signal ({}) to every "
        "peer and exiting with status {} (ops loop failure) so the supervisor restarts "
        "bfd-beacon",
        core::hold_name(signal), kExitOpsLoopFailed);
    // Nothing runs on `ops` any more: tear down on this thread.
    health.reset();
    connections.stop();
    server.stop();
    engine.shutdown(reloader->running().daemon.shutdown_signal);
    log->info("stopped (ops loop failure, exit status {})", kExitOpsLoopFailed);
    return kExitOpsLoopFailed;
  }
  // The signal of the configuration in force, which a reload may have
  // changed; reloads run on the ops loop, so it is read there. Should the
  // loop not answer (it failed just now), the start-up value is named.
  core::Hold signal = cfg.daemon.shutdown_signal;
  {
    auto current = std::make_shared<std::promise<core::Hold>>();
    std::future<core::Hold> answer = current->get_future();
    asio::post(ops, [current, &reloader] {
      current->set_value(reloader->running().daemon.shutdown_signal);
    });
    if (answer.wait_for(std::chrono::seconds(2)) == std::future_status::ready) {
      signal = answer.get();
    }
  }
  log->info("received {}, shutting down (signal to peers: {})", strsignal(sig),
            core::hold_name(signal));
  systemd.stopping("stopping: signalling peers (" + std::string(core::hold_name(signal)) + ")");
  asio::post(ops, [&] {
    metrics.stop();
    health->stop();
    connections.stop();
    server.stop();
    ops.stop();
  });
  ops_thread.join();
  health.reset();  // probes close their fds; nothing runs on `ops` any more
  // The signal of the configuration in force (a reload may have changed it).
  engine.shutdown(reloader->running().daemon.shutdown_signal);
  log->info("stopped");
  return 0;
}

}  // namespace

int run_daemon(const std::vector<std::string>& args) {
  ctl::DaemonParse parsed = ctl::parse_daemon_args(args);
  if (!parsed.args) {
    std::cerr << "bfd-beacon: " << parsed.error << "\n\n" << ctl::daemon_usage();
    return 2;
  }
  const ctl::DaemonArgs& a = *parsed.args;
  if (a.help) {
    std::cout << ctl::daemon_usage();
    return 0;
  }
  if (a.version) {
    std::cout << "bfd-beacon " << BEACON_VERSION << "\n";
    return 0;
  }

  config::LoadResult loaded = config::load_file(a.config);
  for (const auto& e : loaded.errors) std::cerr << e.format() << "\n";
  if (!loaded.errors.empty() || !loaded.config) {
    if (loaded.errors.empty()) std::cerr << a.config << ": configuration could not be loaded\n";
    if (!a.check_config) std::cerr << "bfd-beacon: not starting: invalid configuration\n";
    return 1;
  }
  if (std::string why = config::file_safety_problem(a.config); !why.empty()) {
    std::cerr << a.config << ": " << why << "\n";
    if (!a.check_config) std::cerr << "bfd-beacon: not starting: unsafe configuration file\n";
    return 1;
  }
  const config::Config& cfg = *loaded.config;
  if (a.check_config) {
    std::cout << a.config << ": configuration OK (" << cfg.sessions.size() << " sessions, "
              << cfg.accepts.size() << " accept rules)\n";
    return 0;
  }

  std::string level = a.log_level.value_or(cfg.daemon.log_level);
  if (!ctl::valid_log_level(level)) {
    std::cerr << "bfd-beacon: invalid log level '" << level << "'\n";
    return 1;
  }
  // Read (and remove, so exec checks do not inherit them) the systemd
  // variables while this is the only thread: unsetenv() is not thread-safe.
  const sd::Environment sd_env = sd::read_environment(true, ::getpid());
  // Block the stop signals before any other thread exists (the logger's
  // included): every thread inherits the mask and only sigwait() sees them.
  const sigset_t signals = stop_signals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  auto log = make_logger(level);
  int rc = 1;
  try {
    rc = serve(cfg, a.config, signals, log, sd_env);
  } catch (const std::exception& e) {
    log->critical("fatal: {}", e.what());
  }
  spdlog::shutdown();  // drains the queue: the last lines (shutdown, "stopped") are written
  return rc;
}

}  // namespace beacon::app
