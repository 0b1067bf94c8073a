// Duration strings: a non-negative decimal number followed by a mandatory
// unit, one of us, ms, s ("300us", "50ms", "1.5s"). Minutes and hours are
// deliberately not accepted: BFD intervals live between microseconds and a
// few seconds, and "1m" is too easily read as milliseconds.
#include <cstdint>

#include "beacon/util/duration_text.hpp"
#include "config_impl.hpp"

namespace beacon::config::detail {

namespace {

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// Microseconds per unit and the number of decimals that still give whole
// microseconds (us: 0, ms: 3, s: 6); nullopt for an unknown unit.
struct Unit {
  std::int64_t micros;
  std::size_t decimals;
};
std::optional<Unit> unit_of(std::string_view u) {
  if (u == "us") return Unit{1, 0};
  if (u == "ms") return Unit{1'000, 3};
  if (u == "s") return Unit{1'000'000, 6};
  return std::nullopt;
}

}  // namespace

std::optional<core::Duration> parse_duration_detail(std::string_view text, std::string& why) {
  if (text.empty()) {
    why = "empty; expected a number with a unit (us, ms or s), e.g. \"50ms\"";
    return std::nullopt;
  }
  if (text.front() == '-') {
    why = "negative durations are not allowed";
    return std::nullopt;
  }
  std::size_t pos = 0;
  while (pos < text.size() && is_digit(text[pos])) ++pos;
  const std::string_view whole = text.substr(0, pos);
  std::string_view fraction;
  if (pos < text.size() && text[pos] == '.') {
    const std::size_t start = ++pos;
    while (pos < text.size() && is_digit(text[pos])) ++pos;
    fraction = text.substr(start, pos - start);
    if (fraction.empty()) {
      why = "expected digits after the decimal point";
      return std::nullopt;
    }
  }
  if (whole.empty()) {
    why = "expected a number with a unit (us, ms or s), e.g. \"50ms\"";
    return std::nullopt;
  }
  const std::string_view unit_text = text.substr(pos);
  if (unit_text.empty()) {
    why = "missing unit; write e.g. \"" + std::string(text) + "ms\" (units: us, ms, s)";
    return std::nullopt;
  }
  const auto unit = unit_of(unit_text);
  if (!unit) {
    why = "unknown unit \"" + std::string(unit_text) + "\"; use us, ms or s";
    return std::nullopt;
  }
  // Trailing zeros of the fraction do not add precision ("1.500ms" = 1500us).
  while (!fraction.empty() && fraction.back() == '0') fraction.remove_suffix(1);
  if (fraction.size() > unit->decimals) {
    why = "finer than one microsecond";
    return std::nullopt;
  }
  // 10^12 of any unit is far beyond every sane interval and keeps the
  // arithmetic below inside int64 (10^12 * 10^6 = 10^18).
  constexpr std::int64_t kMaxWhole = 1'000'000'000'000;
  std::int64_t value = 0;
  for (char c : whole) {
    value = value * 10 + (c - '0');
    if (value > kMaxWhole) {
      why = "too large";
      return std::nullopt;
    }
  }
  std::int64_t micros = value * unit->micros;
  std::int64_t scale = unit->micros;
  for (char c : fraction) {
    scale /= 10;
    micros += (c - '0') * scale;
  }
  return core::Duration{micros};
}

std::string format_duration(core::Duration d) {
  return util::duration_exact_text(d);
}

}  // namespace beacon::config::detail

namespace beacon::config {

std::optional<core::Duration> parse_duration(std::string_view text) {
  std::string why;
  return detail::parse_duration_detail(text, why);
}

}  // namespace beacon::config
