// Private helpers of the config loader (not part of the public API).
//
// Diagnostics collects every error with its position; TableReader reads typed
// keys out of one TOML table, remembers which keys it was asked about and
// reports all others as unknown (typos in ops config must never be ignored).
// Nothing here throws: a bad value is an error entry plus std::nullopt.
#pragma once

#include <toml++/toml.h>

#include <boost/asio/ip/address.hpp>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "beacon/config/config.hpp"

namespace beacon::config::detail {

struct Position {
  int line = 0;
  int column = 0;
};

Position position_of(const toml::node& node);
Position position_of(const toml::key& key);

class Diagnostics {
 public:
  explicit Diagnostics(std::string file) : file_(std::move(file)) {}
  void error(Position at, std::string message);
  std::size_t count() const { return errors_.size(); }
  // Errors ordered by position (stable for equal positions).
  std::vector<ConfigError> take_sorted();

  // Per-load state the section loaders share: key files already read in
  // this load, by (path, type), so sessions naming the same file share one
  // key ring and the file is read once.
  std::map<std::pair<std::string, core::wire::AuthType>, std::shared_ptr<const core::auth::KeyRing>>
      key_files;

 private:
  std::string file_;
  std::vector<ConfigError> errors_;
};

// "a string", "an integer", ... for messages.
std::string_view type_name(toml::node_type type);

// Reads keys of one table. Every getter marks its key as known, whether it is
// present or not, so call all getters before report_unknown(). A missing key
// gives nullopt and no error; a present but bad value gives nullopt and an
// error at the value's position.
class TableReader {
 public:
  TableReader(const toml::table& table, std::string section, Diagnostics& diag);

  const toml::table& table() const { return table_; }
  Position position() const { return position_of(table_); }
  Diagnostics& diag() { return diag_; }
  // "bfd.detect_multiplier", "session.peer".
  std::string qualified(std::string_view key) const;

  // The node for `key` (marked known), or nullptr.
  const toml::node* find(std::string_view key);
  std::optional<std::string> get_string(std::string_view key);
  std::optional<bool> get_bool(std::string_view key);
  std::optional<std::int64_t> get_int(std::string_view key, std::int64_t min, std::int64_t max);
  // One of `choices` (exact, case-sensitive).
  std::optional<std::string> get_enum(std::string_view key,
                                      std::span<const std::string_view> choices);
  // A BFD interval: duration string, fits the 32-bit wire field; zero is
  // rejected with `zero_reason` appended to the message.
  std::optional<core::Duration> get_interval(std::string_view key, std::string_view zero_reason);
  // A duration string in min..max (min >= 1us), e.g. check intervals and
  // timeouts; `zero_reason` is appended when the value is 0.
  std::optional<core::Duration> get_duration(std::string_view key, core::Duration min,
                                             core::Duration max, std::string_view zero_reason);

  // Errors for every key nobody asked for, at the key's position, with a
  // "did you mean" hint when a known key is close.
  void report_unknown();

 private:
  void type_error(std::string_view key, const toml::node& node, std::string_view expected);

  const toml::table& table_;
  std::string section_;
  Diagnostics& diag_;
  std::vector<std::string> known_;
};

// Closest candidate within a small edit distance, or empty.
std::string_view suggest(std::string_view word, std::span<const std::string> candidates);

// Duration with a mandatory unit; on failure `why` says what is wrong.
std::optional<core::Duration> parse_duration_detail(std::string_view text, std::string& why);
// Shortest exact spelling in the config syntax: "1s", "1.5s", "150ms", "300us".
std::string format_duration(core::Duration d);

struct ParsedAddress {
  boost::asio::ip::address address;
  std::string scope;  // text after '%', empty if none
};
// Unicast IPv4/IPv6 address with an optional "%scope" (link-local IPv6 only).
std::optional<ParsedAddress> parse_address(std::string_view text, std::string& why);

struct ParsedPrefix {
  boost::asio::ip::address address;
  unsigned length = 0;
};
// "198.18.0.0/15", "fd00::/8"; host bits must be zero.
std::optional<ParsedPrefix> parse_prefix(std::string_view text, std::string& why);

bool is_link_local(const boost::asio::ip::address& a);
// Linux interface name rules (dev_valid_name): 1..15 bytes, not "." or "..",
// no '/', ':' or whitespace.
bool valid_interface_name(std::string_view name);
// Group names: 1..64 of [A-Za-z0-9_.-]; they appear in bfdctl and metrics.
bool valid_group_name(std::string_view name);
// HAProxy proxy (frontend / backend) names: 1..255 of [A-Za-z0-9_.:-].
bool valid_proxy_name(std::string_view name);
// ifindex of an existing interface, 0 if unknown (resolved again at start).
unsigned interface_index(const std::string& name);

}  // namespace beacon::config::detail
