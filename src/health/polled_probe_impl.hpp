// Small helpers shared by the polled probes (haproxy-http, haproxy-socket,
// exec). Private to src/health.
#pragma once

#include <algorithm>
#include <chrono>
#include <string>

#include "beacon/config/config.hpp"
#include "beacon/core/time.hpp"

namespace beacon::health::detail {

// CheckSpec::timeout, or min(interval, 1s) when it is 0 (see config.hpp).
inline core::Duration effective_timeout(const config::CheckSpec& spec) {
  if (spec.timeout.count() > 0) return spec.timeout;
  return std::min(spec.interval, core::kOneSecond);
}

// "150ms": the text used in "timeout after 150ms".
inline std::string ms_text(core::Duration d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) + "ms";
}

// Retrying a connection that failed during an HAProxy hand-over, within one
// run's timeout: 5, 10, 20, 40 ms, then 40 ms after `retries` earlier tries.
inline constexpr core::Duration kRetryMin{5'000};
inline constexpr core::Duration kRetryMax{40'000};
inline core::Duration retry_delay(unsigned retries) {
  return std::min(kRetryMax, core::Duration(kRetryMin.count() << std::min(retries, 3u)));
}

// " (after 3 retries<extra>)", or "" before any retry: appended to the reason
// of a failure that persisted.
inline std::string retries_text(unsigned retries, const std::string& extra = {}) {
  if (retries == 0) return {};
  return " (after " + std::to_string(retries) + (retries == 1 ? " retry" : " retries") + extra +
         ")";
}

inline core::Duration since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration_cast<core::Duration>(std::chrono::steady_clock::now() - start);
}

}  // namespace beacon::health::detail
