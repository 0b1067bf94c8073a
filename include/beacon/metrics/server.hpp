// Serving the metrics: OpsPublisher (ops loop) publishes the OpsSnapshot;
// MetricsServer runs prometheus-cpp's exposer (its own threads) on the
// configured address with a Collector that reads only published snapshots.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "beacon/core/time.hpp"
#include "beacon/engine/published.hpp"
#include "beacon/metrics/collector.hpp"
#include "beacon/metrics/sources.hpp"

namespace prometheus {
class Exposer;
}

namespace beacon::metrics {

// Ops loop: gathers the Sources every `period` (from the previous deadline)
// and whenever poke() is called, and publishes the result.
class OpsPublisher {
 public:
  OpsPublisher(boost::asio::io_context& ops, core::Duration period = core::kOneSecond);
  ~OpsPublisher();
  OpsPublisher(const OpsPublisher&) = delete;
  OpsPublisher& operator=(const OpsPublisher&) = delete;

  // Providers may be set or replaced until start(), and on the ops loop after.
  Sources& sources() { return sources_; }

  void start();  // ops loop: publishes at once, then every period
  void stop();   // ops loop: no more publishing
  void poke();   // ops loop: publish now (a group decision changed)
  // Any thread; never waits on the ops loop. Null before start().
  std::shared_ptr<const OpsSnapshot> latest() const { return published_.get(); }

 private:
  void arm();

  boost::asio::steady_timer timer_;
  core::Duration period_;
  Sources sources_;
  engine::Published<OpsSnapshot> published_;
  std::chrono::steady_clock::time_point due_{};
  bool running_ = false;
};

struct MetricsError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class MetricsServer {
 public:
  // Listens on `listen` ("127.0.0.1:9788", "[::1]:9788") and serves
  // `collector` on /metrics. Throws MetricsError naming the address when it
  // cannot listen.
  MetricsServer(const std::string& listen, std::shared_ptr<Collector> collector);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  std::vector<int> ports() const;

 private:
  std::shared_ptr<Collector> collector_;
  std::unique_ptr<prometheus::Exposer> exposer_;
};

}  // namespace beacon::metrics
