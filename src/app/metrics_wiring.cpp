// See metrics_wiring.hpp.
#include "beacon/app/metrics_wiring.hpp"

namespace beacon::app {

MetricsWiring::MetricsWiring(const config::Config& cfg, boost::asio::io_context& ops,
                             engine::Engine& engine, std::shared_ptr<spdlog::logger> log)
    : listen_(cfg.daemon.metrics_listen), engine_(engine), log_(std::move(log)), publisher_(ops) {
  if (enabled()) engine_.publish_every(core::kOneSecond);
}

void MetricsWiring::attach_health(const health::HealthManager& health) {
  publisher_.sources().checks = [&health] { return health.checks(); };
  publisher_.sources().groups = [&health] { return health.groups(); };
}

std::string MetricsWiring::start_server() {
  if (!enabled()) {
    if (log_) log_->info("metrics disabled ([daemon] metrics_listen = \"\")");
    return {};
  }
  auto collector = std::make_shared<metrics::Collector>([this] { return engine_.published(); },
                                                        [this] { return publisher_.latest(); });
  try {
    server_ = std::make_unique<metrics::MetricsServer>(listen_, std::move(collector));
  } catch (const metrics::MetricsError& e) {
    return e.what();
  }
  if (log_) log_->info("metrics on http://{}/metrics", listen_);
  return {};
}

void MetricsWiring::start() {
  if (enabled()) publisher_.start();
}

void MetricsWiring::stop() {
  publisher_.stop();
}

void MetricsWiring::poke() {
  publisher_.poke();
}

}  // namespace beacon::app
