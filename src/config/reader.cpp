// Typed, position-aware access to TOML tables for the config loader.
#include <algorithm>
#include <limits>

#include "config_impl.hpp"

namespace beacon::config::detail {

Position position_of(const toml::node& node) {
  const auto& b = node.source().begin;
  return {static_cast<int>(b.line), static_cast<int>(b.column)};
}

Position position_of(const toml::key& key) {
  const auto& b = key.source().begin;
  return {static_cast<int>(b.line), static_cast<int>(b.column)};
}

void Diagnostics::error(Position at, std::string message) {
  errors_.push_back(ConfigError{file_, at.line, at.column, std::move(message)});
}

std::vector<ConfigError> Diagnostics::take_sorted() {
  std::stable_sort(errors_.begin(), errors_.end(), [](const auto& a, const auto& b) {
    return a.line != b.line ? a.line < b.line : a.column < b.column;
  });
  return std::move(errors_);
}

std::string_view type_name(toml::node_type type) {
  switch (type) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

TableReader::TableReader(const toml::table& table, std::string section, Diagnostics& diag)
    : table_(table), section_(std::move(section)), diag_(diag) {}

std::string TableReader::qualified(std::string_view key) const {
  return section_ + "." + std::string(key);
}

const toml::node* TableReader::find(std::string_view key) {
  if (std::find(known_.begin(), known_.end(), key) == known_.end()) known_.emplace_back(key);
  return table_.get(key);
}

void TableReader::type_error(std::string_view key, const toml::node& node,
                             std::string_view expected) {
  diag_.error(position_of(node), qualified(key) + ": expected " + std::string(expected) + ", got " +
                                     std::string(type_name(node.type())));
}

std::optional<std::string> TableReader::get_string(std::string_view key) {
  const toml::node* n = find(key);
  if (n == nullptr) return std::nullopt;
  if (const auto* s = n->as_string()) return s->get();
  type_error(key, *n, "a string");
  return std::nullopt;
}

std::optional<bool> TableReader::get_bool(std::string_view key) {
  const toml::node* n = find(key);
  if (n == nullptr) return std::nullopt;
  if (const auto* b = n->as_boolean()) return b->get();
  type_error(key, *n, "a boolean (true or false)");
  return std::nullopt;
}

std::optional<std::int64_t> TableReader::get_int(std::string_view key, std::int64_t min,
                                                 std::int64_t max) {
  const toml::node* n = find(key);
  if (n == nullptr) return std::nullopt;
  const std::string range = std::to_string(min) + ".." + std::to_string(max);
  const auto* i = n->as_integer();
  if (i == nullptr) {
    type_error(key, *n, "an integer (" + range + ")");
    return std::nullopt;
  }
  const std::int64_t v = i->get();
  if (v < min || v > max) {
    diag_.error(position_of(*n),
                qualified(key) + ": " + std::to_string(v) + " is out of range " + range);
    return std::nullopt;
  }
  return v;
}

std::optional<std::string> TableReader::get_enum(std::string_view key,
                                                 std::span<const std::string_view> choices) {
  const toml::node* n = find(key);
  if (n == nullptr) return std::nullopt;
  std::string list;
  for (auto c : choices) list += (list.empty() ? "\"" : ", \"") + std::string(c) + "\"";
  const auto* s = n->as_string();
  if (s == nullptr) {
    type_error(key, *n, "one of " + list);
    return std::nullopt;
  }
  if (std::find(choices.begin(), choices.end(), std::string_view(s->get())) == choices.end()) {
    diag_.error(position_of(*n), qualified(key) + ": \"" + s->get() + "\" is not one of " + list);
    return std::nullopt;
  }
  return s->get();
}

std::optional<core::Duration> TableReader::get_interval(std::string_view key,
                                                        std::string_view zero_reason) {
  // The wire fields (Desired Min TX, Required Min RX) are 32-bit microseconds.
  constexpr auto kWireMax = std::numeric_limits<std::uint32_t>::max();
  const toml::node* n = find(key);
  if (n == nullptr) return std::nullopt;
  const auto* s = n->as_string();
  if (s == nullptr) {
    type_error(key, *n, "a duration string with a unit (us, ms or s), e.g. \"50ms\"");
    return std::nullopt;
  }
  std::string why;
  auto d = parse_duration_detail(s->get(), why);
  if (!d) {
    diag_.error(position_of(*n),
                qualified(key) + ": invalid duration \"" + s->get() + "\": " + why);
    return std::nullopt;
  }
  if (d->count() > static_cast<std::int64_t>(kWireMax)) {
    diag_.error(position_of(*n), qualified(key) + ": \"" + s->get() + "\" exceeds " +
                                     std::to_string(kWireMax) +
                                     "us, the largest interval a BFD packet can carry");
    return std::nullopt;
  }
  if (d->count() == 0) {
    diag_.error(position_of(*n),
                qualified(key) + ": must be greater than 0: " + std::string(zero_reason));
    return std::nullopt;
  }
  return d;
}

std::optional<core::Duration> TableReader::get_duration(std::string_view key, core::Duration min,
                                                        core::Duration max,
                                                        std::string_view zero_reason) {
  const toml::node* n = find(key);
  if (n == nullptr) return std::nullopt;
  const auto* s = n->as_string();
  if (s == nullptr) {
    type_error(key, *n, "a duration string with a unit (us, ms or s), e.g. \"50ms\"");
    return std::nullopt;
  }
  std::string why;
  auto d = parse_duration_detail(s->get(), why);
  if (!d) {
    diag_.error(position_of(*n),
                qualified(key) + ": invalid duration \"" + s->get() + "\": " + why);
    return std::nullopt;
  }
  if (d->count() == 0) {
    diag_.error(position_of(*n),
                qualified(key) + ": must be greater than 0: " + std::string(zero_reason));
    return std::nullopt;
  }
  if (*d < min || *d > max) {
    diag_.error(position_of(*n), qualified(key) + ": \"" + s->get() + "\" is out of range " +
                                     format_duration(min) + ".." + format_duration(max));
    return std::nullopt;
  }
  return d;
}

namespace {

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0u : 1u)});
      diag = up;
    }
  }
  return row[b.size()];
}

}  // namespace

std::string_view suggest(std::string_view word, std::span<const std::string> candidates) {
  // Keys are short; bound the work for absurd input (fuzzing, binary garbage).
  if (word.size() > 64) return {};
  std::string_view best;
  std::size_t best_distance = std::max<std::size_t>(2, word.size() / 3) + 1;
  for (const auto& c : candidates) {
    const std::size_t d = edit_distance(word, c);
    if (d < best_distance) {
      best_distance = d;
      best = c;
    }
  }
  return best;
}

void TableReader::report_unknown() {
  for (auto&& [key, node] : table_) {
    if (std::find(known_.begin(), known_.end(), key.str()) != known_.end()) continue;
    std::string message =
        "unknown key \"" + std::string(key.str()) + "\" in " +
        (section_ == "session" || section_ == "accept" || section_ == "check" || section_ == "group"
             ? "[[" + section_ + "]]"
             : "[" + section_ + "]");
    if (auto hint = suggest(key.str(), known_); !hint.empty()) {
      message += "; did you mean \"" + std::string(hint) + "\"?";
    }
    diag_.error(position_of(key), std::move(message));
  }
}

}  // namespace beacon::config::detail
