// The control plane's narrow view of the daemon: what `bfdctl` may read and
// change. The control protocol (protocol.hpp) only talks to this interface, so
// its handlers are unit-tested with a fake; EngineBackend (engine_backend.hpp)
// adapts engine::Engine for the daemon.
//
// Thread: every method is called on the ops loop thread. Reads must not wait
// on the engine loop (the engine adapter reads its published snapshot);
// set_hold may block briefly (the engine applies it and publishes).
#pragma once

#include <cstdint>
#include <vector>

#include "beacon/core/session.hpp"
#include "beacon/engine/engine.hpp"

namespace beacon::ctl {

class Backend {
 public:
  virtual ~Backend() = default;

  virtual std::vector<engine::SessionSnapshot> sessions() = 0;
  virtual engine::EngineStats stats() = 0;
  // Hold::None releases `source`'s hold for the selector. A non-empty
  // HoldResult::error means the request was refused (unknown peer, ...).
  virtual engine::HoldResult set_hold(engine::HoldSource source, const engine::Selector& sel,
                                      core::Hold hold, std::uint8_t diag) = 0;
};

}  // namespace beacon::ctl
