// Fuzz target: the configuration loader (config::load_string), TOML parse
// and every key's validation, and on success the engine's view of the
// result (EngineOptions::from) and the reload diff against itself.
//
// Input: the configuration text. Oracle: a result has a config or errors,
// never both, never neither; every error has a message.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "beacon/config/config.hpp"
#include "beacon/config/diff.hpp"
#include "beacon/engine/core.hpp"

namespace {

[[noreturn]] void oracle_failed() {
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const beacon::config::LoadResult r = beacon::config::load_string(text, "fuzz.toml");
  if (r.config.has_value() == !r.errors.empty()) oracle_failed();
  for (const auto& e : r.errors) {
    if (e.message.empty()) oracle_failed();
  }
  if (r.config) {
    (void)beacon::engine::EngineOptions::from(*r.config);
    (void)beacon::config::effective_after_reload(*r.config, *r.config);
  }
  return 0;
}
