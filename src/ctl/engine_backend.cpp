// Backend over the real engine. Each call posts to the engine loop and waits
// for its answer (engine.hpp's thread model); called on the ops loop.
#include "beacon/ctl/engine_backend.hpp"

namespace beacon::ctl {

std::vector<engine::SessionSnapshot> EngineBackend::sessions() {
  return engine_.sessions();
}

engine::EngineStats EngineBackend::stats() {
  return engine_.stats();
}

engine::HoldResult EngineBackend::set_hold(engine::HoldSource source, const engine::Selector& sel,
                                           core::Hold hold, std::uint8_t diag) {
  return engine_.set_hold(source, sel, hold, diag);
}

}  // namespace beacon::ctl
