// Backend adapter over engine::Engine (the daemon's real backend).
#pragma once

#include "beacon/ctl/backend.hpp"
#include "beacon/engine/engine.hpp"

namespace beacon::ctl {

class EngineBackend final : public Backend {
 public:
  explicit EngineBackend(engine::Engine& engine) : engine_(engine) {}

  std::vector<engine::SessionSnapshot> sessions() override;
  engine::EngineStats stats() override;
  engine::HoldResult set_hold(engine::HoldSource source, const engine::Selector& sel,
                              core::Hold hold, std::uint8_t diag) override;

 private:
  engine::Engine& engine_;
};

}  // namespace beacon::ctl
