// Config loader: TOML text -> Config, or every error with file:line:column.
//
// Runs on the ops side (start-up, reload, --check-config). load_string and
// load_file never throw: syntax errors, bad values, unknown keys and I/O
// failures all become ConfigError entries, sorted by position.

#include <cerrno>
#include <cstring>
#include <exception>

#include "beacon/util/errno_text.hpp"
#include "beacon/util/file_read.hpp"
#include "config_impl.hpp"
#include "config_sections.hpp"

namespace beacon::config {

std::string ConfigError::format() const {
  std::string out = file.empty() ? std::string("<config>") : file;
  if (line > 0) {
    out += ":" + std::to_string(line);
    if (column > 0) out += ":" + std::to_string(column);
  }
  return out + ": " + message;
}

namespace {

using detail::Diagnostics;
using detail::position_of;

// Top-level layout: [daemon], [bfd], [[session]]..., [[accept]]...,
// [[check]]..., [[group]]..., [health].
void load_root(const toml::table& root, Config& config, Diagnostics& diag) {
  static const std::vector<std::string> kSections = {
      "daemon", "engine", "bfd", "session", "accept", "check", "group", "health", "drain"};
  for (auto&& [key, node] : root) {
    const std::string_view name = key.str();
    if (name == "daemon" || name == "engine" || name == "bfd" || name == "health" ||
        name == "drain") {
      if (!node.is_table()) {
        diag.error(position_of(node), std::string(name) + ": expected a table ([" +
                                          std::string(name) + "]), got " +
                                          std::string(detail::type_name(node.type())));
      }
    } else if (name == "session" || name == "accept" || name == "check" || name == "group") {
      if (!node.is_array()) {
        diag.error(position_of(key), "\"" + std::string(name) +
                                         "\" must be an array of tables: write [[" +
                                         std::string(name) + "]], not [" + std::string(name) + "]");
      }
    } else {
      std::string message = "unknown section \"" + std::string(name) + "\"";
      if (auto hint = detail::suggest(name, kSections); !hint.empty()) {
        message += "; did you mean \"" + std::string(hint) + "\"?";
      }
      diag.error(position_of(key), std::move(message));
    }
  }
  // Order matters: [bfd] supplies the defaults of sessions and accept rules.
  if (const auto* t = root.get_as<toml::table>("daemon")) detail::load_daemon(*t, config, diag);
  if (const auto* t = root.get_as<toml::table>("engine")) detail::load_engine(*t, config, diag);
  if (const auto* t = root.get_as<toml::table>("bfd")) detail::load_bfd(*t, config, diag);
  if (const auto* a = root.get_as<toml::array>("session")) detail::load_sessions(*a, config, diag);
  if (const auto* a = root.get_as<toml::array>("accept")) detail::load_accepts(*a, config, diag);
  // Groups name checks, wherever the [[check]] tables appear in the file.
  if (const auto* a = root.get_as<toml::array>("check")) detail::load_checks(*a, config, diag);
  if (const auto* a = root.get_as<toml::array>("group")) detail::load_groups(*a, config, diag);
  if (const auto* t = root.get_as<toml::table>("health")) detail::load_health(*t, config, diag);
  if (const auto* t = root.get_as<toml::table>("drain")) detail::load_drain(*t, config, diag);
}

LoadResult finish(Config config, Diagnostics& diag) {
  LoadResult result;
  result.errors = diag.take_sorted();
  if (result.errors.empty()) result.config = std::move(config);
  return result;
}

// Config files are small; refuse anything absurd rather than read it.
constexpr std::size_t kMaxFileSize = 16 * 1024 * 1024;

}  // namespace

LoadResult load_string(std::string_view text, std::string_view source_name) {
  Diagnostics diag{std::string(source_name)};
  try {
    Config config;
    config.source = std::string(source_name);
    toml::table root;
    try {
      root = toml::parse(text, source_name);
    } catch (const toml::parse_error& e) {
      diag.error(detail::Position{static_cast<int>(e.source().begin.line),
                                  static_cast<int>(e.source().begin.column)},
                 "syntax error: " + std::string(e.description()));
      return finish(Config{}, diag);
    }
    load_root(root, config, diag);
    return finish(std::move(config), diag);
  } catch (const std::exception& e) {
    // Nothing above is expected to throw except allocation failure; keep the
    // promise that loading never throws.
    diag.error({}, std::string("internal error while loading: ") + e.what());
  } catch (...) {
    diag.error({}, "internal error while loading");
  }
  LoadResult result;
  result.errors = diag.take_sorted();
  return result;
}

LoadResult load_file(const std::string& path) {
  const util::SmallFile f = util::read_small_file(path, kMaxFileSize);
  if (f.error != 0) {
    LoadResult r;
    r.errors.push_back(ConfigError{
        path, 0, 0,
        std::string(f.at_open ? "cannot open" : "cannot read") + ": " + util::errno_text(f.error)});
    return r;
  }
  return load_string(f.content, path);
}

}  // namespace beacon::config
