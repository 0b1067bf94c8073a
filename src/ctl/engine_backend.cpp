// Backend over the real engine; called on the ops loop. Reads come from the
// snapshot the engine publishes (Engine::view: never a wait on the engine
// loop, fresh after any change); set_hold posts to the loop and returns once
// its effect is published.
#include "beacon/ctl/engine_backend.hpp"

namespace beacon::ctl {

std::vector<engine::SessionSnapshot> EngineBackend::sessions() {
  return engine_.view()->sessions;
}

engine::EngineStats EngineBackend::stats() {
  return engine_.stats_view();
}

engine::HoldResult EngineBackend::set_hold(engine::HoldSource source, const engine::Selector& sel,
                                           core::Hold hold, std::uint8_t diag) {
  return engine_.set_hold(source, sel, hold, diag);
}

}  // namespace beacon::ctl
