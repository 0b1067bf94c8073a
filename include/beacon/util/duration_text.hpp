// Durations as text. Several formats exist because each one is already seen by
// users or tests (config errors, reload diffs, hold reasons, bfdctl tables);
// each keeps its own name so that no output changes. Pure; any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace beacon::util {

// Exact and re-parseable by the config reader: the largest whole unit,
// "2s", "250ms", "1500us", "0us".
std::string duration_exact_text(std::chrono::microseconds d);

// Milliseconds when whole, else microseconds: "1000ms", "1500us", "0ms".
std::string duration_ms_text(std::chrono::microseconds d);

// Short and rounded: "1.2s" from one second on, "250ms" (truncated) below.
std::string duration_short_text(std::chrono::microseconds d);

// An interval for tables: "-" when not positive, "900us", "50ms", "1.5ms",
// "2s", "1.25s" (at most three decimals, trailing zeros dropped).
std::string interval_text(std::int64_t us);

}  // namespace beacon::util
