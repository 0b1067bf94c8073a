// OpsPublisher and MetricsServer (see server.hpp).
#include "beacon/metrics/server.hpp"

#include <prometheus/exposer.h>

#include <utility>

namespace beacon::metrics {

OpsPublisher::OpsPublisher(boost::asio::io_context& ops, core::Duration period)
    : timer_(ops), period_(std::max(period, core::Duration{1'000})) {}

OpsPublisher::~OpsPublisher() {
  timer_.cancel();
}

void OpsPublisher::start() {
  if (running_) return;
  running_ = true;
  due_ = std::chrono::steady_clock::now();
  poke();
  arm();
}

void OpsPublisher::stop() {
  running_ = false;
  timer_.cancel();
}

void OpsPublisher::poke() {
  if (!running_) return;
  published_.publish(std::make_shared<const OpsSnapshot>(gather(sources_)));
}

void OpsPublisher::arm() {
  due_ += period_;
  const auto now = std::chrono::steady_clock::now();
  if (due_ < now) due_ = now + period_;  // after a stall: no burst
  timer_.expires_at(due_);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || !running_) return;
    poke();
    arm();
  });
}

MetricsServer::MetricsServer(const std::string& listen, std::shared_ptr<Collector> collector)
    : collector_(std::move(collector)) {
  try {
    // Two threads: one slow client does not hold up the next scrape.
    exposer_ = std::make_unique<prometheus::Exposer>(listen, 2);
  } catch (const std::exception& e) {
    throw MetricsError("metrics_listen " + listen + ": cannot listen (" + e.what() + ")");
  }
  exposer_->RegisterCollectable(collector_);
}

MetricsServer::~MetricsServer() {
  exposer_.reset();  // joins the exposer's threads before the collector goes
}

std::vector<int> MetricsServer::ports() const {
  return exposer_->GetListeningPorts();
}

}  // namespace beacon::metrics
