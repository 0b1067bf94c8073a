// Glue between the daemon and the metrics module: the engine's periodic
// snapshot, the ops loop's OpsPublisher fed by the health manager, and the
// exposer on [daemon] metrics_listen. Nothing here is created when
// metrics_listen is "".
//
// Threads: the constructor and start_server() run on main before the loops;
// attach_health(), start(), stop() and poke() on the ops loop (or before it
// runs); scrapes run on the exposer's threads and read only what the two
// loops published.
#pragma once

#include <spdlog/logger.h>

#include <boost/asio/io_context.hpp>
#include <memory>
#include <string>

#include "beacon/config/config.hpp"
#include "beacon/engine/engine.hpp"
#include "beacon/health/manager.hpp"
#include "beacon/metrics/server.hpp"

namespace beacon::app {

class MetricsWiring {
 public:
  // Before engine.run(): asks the engine to publish a snapshot every second.
  MetricsWiring(const config::Config& cfg, boost::asio::io_context& ops, engine::Engine& engine,
                std::shared_ptr<spdlog::logger> log);
  bool enabled() const { return !listen_.empty(); }

  // Health checks and groups as OpsSnapshot sources. `health` must outlive
  // this object's start()..stop().
  void attach_health(const health::HealthManager& health);
  // The remaining providers (reloads, drain, maintenance): set them here
  // before start(); see metrics/sources.hpp for what an empty one exports.
  metrics::Sources& sources() { return publisher_.sources(); }

  // Opens the endpoint. "" on success (or when disabled), else the error.
  std::string start_server();
  void start();  // ops loop
  void stop();   // ops loop
  void poke();   // ops loop: a group decision changed

 private:
  std::string listen_;
  engine::Engine& engine_;
  std::shared_ptr<spdlog::logger> log_;
  metrics::OpsPublisher publisher_;
  std::unique_ptr<metrics::MetricsServer> server_;
};

}  // namespace beacon::app
