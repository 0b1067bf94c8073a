// The Prometheus families of bfd-beacon, built from published snapshots
// only (sources.hpp). build_families() is pure: tests feed it snapshots and
// check the text exposition. Collector adapts it to prometheus-cpp; its
// Collect() runs on the exposer's thread and never touches either loop: it
// copies the two latest snapshot pointers, reads /proc/self and formats.
//
// A session that is gone (a dynamic session timed out, a reload removed it)
// is absent from the next engine snapshot, so its series disappear with it.
// Family names: see README.md ("Metrics") and the list in collector.cpp.
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "beacon/core/time.hpp"
#include "beacon/engine/types.hpp"
#include "beacon/metrics/process.hpp"
#include "beacon/metrics/sources.hpp"

namespace beacon::metrics {

struct Inputs {
  std::shared_ptr<const engine::EngineSnapshot> engine;  // null: no engine series
  std::shared_ptr<const OpsSnapshot> ops;                // null: no health series
  std::optional<ProcessStats> process;                   // nullopt: no process_* series
  core::TimePoint now{};                                 // steady: the engine snapshot's age
  std::string version;                                   // build_info
};

std::vector<prometheus::MetricFamily> build_families(const Inputs& in);

// Text exposition format 0.0.4 of `families` (prometheus-cpp's serializer).
std::string to_text(const std::vector<prometheus::MetricFamily>& families);

class Collector final : public prometheus::Collectable {
 public:
  using EngineFn = std::function<std::shared_ptr<const engine::EngineSnapshot>()>;
  using OpsFn = std::function<std::shared_ptr<const OpsSnapshot>()>;
  // Both functions must be callable from any thread without waiting on a
  // loop (Published<T>::get()).
  Collector(EngineFn engine, OpsFn ops);
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  EngineFn engine_;
  OpsFn ops_;
};

}  // namespace beacon::metrics
