// [[check]], [[group]] and [health] (issue 3): health checks, the groups
// they drive and the engine fail-safe. Every problem is an error with
// file:line:column; defaults that depend on other keys (timeout,
// fast_interval, rise, fall) are resolved by apply_check_defaults so consumers
// never see 0. The check type registry (check_types()) lives here too: one
// row per CheckType with everything that depends on the type.
#include <algorithm>
#include <array>
#include <set>
#include <stdexcept>

#include "config_sections.hpp"

namespace beacon::config {

namespace detail {

// What a type's reader (CheckTypeInfo::read) works on: the [[check]] table
// and the spec being built. Declared in config.hpp so the registry can name
// it; private to the loader.
struct CheckKeyReader {
  TableReader& r;
  CheckSpec& c;
  const std::string& label;  // "[[check]] \"name\"" for messages

  // Reports `key` missing (it is required by the check's type).
  void require(std::string_view key, std::string_view example) {
    if (r.find(key) == nullptr) {
      r.diag().error(r.position(), label + " of type " + std::string(config::type_name(c.type)) +
                                       " needs " + std::string(key) + ", e.g. " + std::string(key) +
                                       " = " + std::string(example));
    }
  }
};

namespace {

using namespace std::chrono_literals;

template <typename Range>
std::string join(const Range& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ", ") + std::string(i);
  return out;
}

Position pos_of(TableReader& r, std::string_view key) {
  const toml::node* n = r.find(key);
  return n != nullptr ? position_of(*n) : r.position();
}

// Polling faster than this is a configuration mistake (it would spin the ops
// loop and hammer HAProxy); the upper bound keeps the arithmetic sane.
constexpr core::Duration kMinInterval = 1ms;
constexpr core::Duration kMaxDuration = 3600s;

constexpr std::size_t kMaxPath = 4095;       // PATH_MAX - 1
constexpr std::size_t kMaxSocketPath = 107;  // sun_path minus the NUL

// An absolute path naming a file; `max` bytes at most.
std::optional<std::string> read_path(TableReader& r, std::string_view key, std::size_t max) {
  auto path = r.get_string(key);
  if (!path) return std::nullopt;
  const Position at = pos_of(r, key);
  std::string why;
  if (path->empty() || path->front() != '/') {
    why = "must be an absolute path (starting with /)";
  } else if (path->find('\0') != std::string::npos) {
    why = "must not contain a NUL character";
  } else if (path->size() > max) {
    why = "longer than " + std::to_string(max) + " bytes" +
          (max == kMaxSocketPath ? " (the limit of a UNIX socket address)" : "");
  } else if (path->back() == '/') {
    why = "must name a file, not a directory";
  }
  if (!why.empty()) {
    r.diag().error(at, r.qualified(key) + ": \"" + *path + "\" " + why);
    return std::nullopt;
  }
  return path;
}

bool starts_with_nocase(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    char c = text[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != prefix[i]) return false;
  }
  return true;
}

std::optional<std::string> read_url(TableReader& r) {
  auto url = r.get_string("url");
  if (!url) return std::nullopt;
  std::string why;
  std::size_t scheme = 0;
  if (starts_with_nocase(*url, "http://")) {
    scheme = 7;
  } else if (starts_with_nocase(*url, "https://")) {
    scheme = 8;
  }
  const bool bad_char = std::any_of(url->begin(), url->end(), [](char c) {
    return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f;
  });
  if (scheme == 0) {
    why = "must start with http:// or https://";
  } else if (url->size() == scheme || (*url)[scheme] == '/') {
    why = "has no host";
  } else if (bad_char) {
    why = "must not contain spaces or control characters";
  } else if (url->size() > 2048) {
    why = "longer than 2048 bytes";
  }
  if (!why.empty()) {
    r.diag().error(pos_of(r, "url"), "check.url: \"" + *url + "\" " + why);
    return std::nullopt;
  }
  return url;
}

// command = ["/usr/local/bin/check", "--quick"]: a non-empty array of
// strings; argv[0] is an absolute path or a plain name looked up in PATH.
std::optional<std::vector<std::string>> read_command(TableReader& r) {
  const toml::node* n = r.find("command");
  if (n == nullptr) return std::nullopt;
  const auto* arr = n->as_array();
  if (arr == nullptr) {
    r.diag().error(position_of(*n),
                   "check.command: expected an array of strings, e.g. [\"/usr/local/bin/check\", "
                   "\"--quick\"], got " +
                       std::string(type_name(n->type())));
    return std::nullopt;
  }
  if (arr->empty()) {
    r.diag().error(position_of(*n), "check.command: must name a program: the array is empty");
    return std::nullopt;
  }
  constexpr std::size_t kMaxArgs = 256;
  if (arr->size() > kMaxArgs) {
    r.diag().error(position_of(*n),
                   "check.command: more than " + std::to_string(kMaxArgs) + " arguments");
    return std::nullopt;
  }
  std::vector<std::string> argv;
  bool ok = true;
  for (std::size_t i = 0; i < arr->size(); ++i) {
    const toml::node& e = *arr->get(i);
    const auto* s = e.as_string();
    const std::string where = "check.command[" + std::to_string(i) + "]: ";
    if (s == nullptr) {
      r.diag().error(position_of(e),
                     where + "expected a string, got " + std::string(type_name(e.type())));
      ok = false;
      continue;
    }
    const std::string& arg = s->get();
    if (arg.find('\0') != std::string::npos) {
      r.diag().error(position_of(e), where + "must not contain a NUL character");
      ok = false;
      continue;
    }
    if (i == 0) {
      const bool absolute = !arg.empty() && arg.front() == '/' && arg.back() != '/';
      const bool plain = !arg.empty() && arg.find('/') == std::string::npos;
      if (!absolute && !plain) {
        r.diag().error(position_of(e),
                       where + "\"" + arg +
                           "\" must be an absolute path or a plain program name (looked up in "
                           "PATH); relative paths depend on the daemon's working directory");
        ok = false;
        continue;
      }
    }
    argv.push_back(arg);
  }
  if (!ok) return std::nullopt;
  return argv;
}

// ---- readers of the type-specific keys (CheckTypeInfo::read) ----

void read_haproxy_http(CheckKeyReader& k) {
  k.require("url", "\"http://127.0.0.1:8405/beacon-health\"");
  if (auto url = read_url(k.r)) k.c.url = *url;
  if (auto s = k.r.get_int("expect_status", 100, 599)) k.c.expect_status = static_cast<int>(*s);
}

void read_haproxy_socket(CheckKeyReader& k) {
  TableReader& r = k.r;
  k.require("socket", "\"/run/haproxy/admin.sock\"");
  if (auto p = read_path(r, "socket", kMaxSocketPath)) k.c.socket = *p;
  if (auto b = r.get_string("backend")) {
    if (!valid_proxy_name(*b)) {
      r.diag().error(pos_of(r, "backend"),
                     "check.backend: \"" + *b +
                         "\" is not a valid HAProxy backend name (1-255 of A-Z a-z 0-9 - _ . :)");
    } else {
      k.c.backend = *b;
    }
  }
  if (auto m = r.get_int("min_servers_up", 0, 1'000'000)) {
    k.c.min_servers_up = static_cast<std::uint32_t>(*m);
    if (r.find("backend") == nullptr) {
      r.diag().error(pos_of(r, "min_servers_up"),
                     "check.min_servers_up: only meaningful with backend = \"...\" (the backend "
                     "whose UP servers are counted)");
    }
  }
}

void read_haproxy_process(CheckKeyReader& k) {
  TableReader& r = k.r;
  k.require("pidfile", "\"/run/haproxy.pid\"");
  if (auto p = read_path(r, "pidfile", kMaxPath)) k.c.pidfile = *p;
  if (auto g = r.get_duration("reload_grace", 1ms, 10s,
                              "omit it for the default 200ms; the grace only applies while a "
                              "successor process hands over with -sf/-st")) {
    k.c.reload_grace = *g;
  }
  if (auto n = r.get_string("process_name")) {
    if (n->size() > 255 || n->find('/') != std::string::npos ||
        n->find('\0') != std::string::npos) {
      r.diag().error(pos_of(r, "process_name"),
                     "check.process_name: \"" + *n +
                         "\" must be a program name (no '/', at most 255 bytes), or \"\" to "
                         "accept any process");
    } else {
      k.c.process_name = *n;
    }
  }
}

void read_interface(CheckKeyReader& k) {
  TableReader& r = k.r;
  k.require("interface", "\"eth1\"");
  // Not resolved here: a missing interface is a failing check at run time.
  if (auto i = r.get_string("interface")) {
    if (!valid_interface_name(*i)) {
      r.diag().error(pos_of(r, "interface"),
                     "check.interface: \"" + *i +
                         "\" is not a valid interface name (1-15 bytes, no '/', ':' or spaces)");
    } else {
      k.c.interface = *i;
    }
  }
}

void read_file(CheckKeyReader& k) {
  k.require("path", "\"/etc/bfd-beacon/maintenance\"");
  if (auto p = read_path(k.r, "path", kMaxPath)) k.c.path = *p;
}

void read_exec(CheckKeyReader& k) {
  k.require("command", "[\"/usr/local/bin/my-check\", \"--quick\"]");
  if (auto argv = read_command(k.r)) k.c.command = std::move(*argv);
}

}  // namespace
}  // namespace detail

// ---- the check type registry ----

namespace {

using namespace std::chrono_literals;

constexpr std::array<std::string_view, 2> kHttpKeys = {"url", "expect_status"};
constexpr std::array<std::string_view, 3> kSocketKeys = {"socket", "backend", "min_servers_up"};
constexpr std::array<std::string_view, 3> kProcessKeys = {"pidfile", "reload_grace",
                                                          "process_name"};
constexpr std::array<std::string_view, 1> kInterfaceKeys = {"interface"};
constexpr std::array<std::string_view, 1> kFileKeys = {"path"};
constexpr std::array<std::string_view, 1> kExecKeys = {"command"};

// Hysteresis: a polled check needs 2 results in a row to change state (one
// bad poll is noise); an event-driven check reports a kernel event, which is
// already a fact, so 1 suffices. Interval 1s; the timeout defaults to the
// interval, at most 1s, so a poll finishes before the next is due.
constexpr std::uint32_t kPolledCount = 2;
constexpr std::uint32_t kEventCount = 1;
constexpr core::Duration kDefaultInterval = 1s;
constexpr core::Duration kDefaultTimeoutMax = 1s;

// Rows in enumerator order (checked below); the order is also the order of
// "valid types: ..." in messages.
constexpr std::array<CheckTypeInfo, kCheckTypeCount> kRegistry = {{
    {CheckType::HaproxyHttp, "haproxy-http", true, kHttpKeys, kPolledCount, kPolledCount,
     kDefaultInterval, kDefaultTimeoutMax, &detail::read_haproxy_http},
    {CheckType::HaproxySocket, "haproxy-socket", true, kSocketKeys, kPolledCount, kPolledCount,
     kDefaultInterval, kDefaultTimeoutMax, &detail::read_haproxy_socket},
    {CheckType::HaproxyProcess, "haproxy-process", false, kProcessKeys, kEventCount, kEventCount,
     kDefaultInterval, kDefaultTimeoutMax, &detail::read_haproxy_process},
    {CheckType::Interface, "interface", false, kInterfaceKeys, kEventCount, kEventCount,
     kDefaultInterval, kDefaultTimeoutMax, &detail::read_interface},
    {CheckType::File, "file", false, kFileKeys, kEventCount, kEventCount, kDefaultInterval,
     kDefaultTimeoutMax, &detail::read_file},
    {CheckType::Exec, "exec", true, kExecKeys, kPolledCount, kPolledCount, kDefaultInterval,
     kDefaultTimeoutMax, &detail::read_exec},
}};

constexpr bool registry_in_enum_order() {
  for (std::size_t i = 0; i < kRegistry.size(); ++i) {
    if (static_cast<std::size_t>(kRegistry[i].type) != i) return false;
  }
  return true;
}
static_assert(registry_in_enum_order(), "kRegistry row i must be CheckType i");
static_assert(static_cast<std::size_t>(CheckType::Exec) + 1 == kCheckTypeCount,
              "kCheckTypeCount must count every CheckType");

}  // namespace

std::span<const CheckTypeInfo> check_types() {
  return kRegistry;
}

const CheckTypeInfo& check_type_info(CheckType type) {
  const auto i = static_cast<std::size_t>(type);
  if (i >= kRegistry.size()) {
    throw std::invalid_argument("unknown check type " + std::to_string(i));
  }
  return kRegistry[i];
}

std::string_view type_name(CheckType type) {
  const auto i = static_cast<std::size_t>(type);
  return i < kRegistry.size() ? kRegistry[i].name : std::string_view("unknown");
}

std::optional<CheckType> parse_check_type(std::string_view name) {
  for (const auto& t : kRegistry) {
    if (t.name == name) return t.type;
  }
  return std::nullopt;
}

void apply_check_defaults(CheckSpec& spec) {
  const CheckTypeInfo& t = check_type_info(spec.type);
  if (spec.interval.count() <= 0) spec.interval = t.interval;
  if (spec.fast_interval.count() <= 0) spec.fast_interval = spec.interval;
  if (spec.timeout.count() <= 0) spec.timeout = std::min(spec.interval, t.timeout_max);
  if (spec.rise == 0) spec.rise = t.rise;
  if (spec.fall == 0) spec.fall = t.fall;
}

namespace detail {
namespace {

using namespace std::chrono_literals;

// Keys every check type accepts.
constexpr std::array<std::string_view, 4> kCommonKeys = {"name", "type", "rise", "fall"};
// Keys of polled types only; event-driven types act on kernel events and have
// no poll schedule.
constexpr std::array<std::string_view, 3> kPollKeys = {"interval", "fast_interval", "timeout"};

// "haproxy-http, haproxy-socket, ...": the registry's names, in its order.
const std::string& type_names_text() {
  static const std::string kText = [] {
    std::string out;
    for (const auto& t : check_types()) out += (out.empty() ? "" : ", ") + std::string(t.name);
    return out;
  }();
  return kText;
}

// Every key any check type knows, for "not valid for this type" vs "unknown".
std::vector<std::string_view> all_check_keys() {
  std::vector<std::string_view> keys(kCommonKeys.begin(), kCommonKeys.end());
  keys.insert(keys.end(), kPollKeys.begin(), kPollKeys.end());
  for (const auto& t : check_types()) keys.insert(keys.end(), t.keys.begin(), t.keys.end());
  return keys;
}

// The keys a check of type `t` accepts, in the order "valid keys: ..." lists them.
std::vector<std::string_view> keys_of(const CheckTypeInfo& t) {
  std::vector<std::string_view> keys(kCommonKeys.begin(), kCommonKeys.end());
  keys.insert(keys.end(), t.keys.begin(), t.keys.end());
  if (t.polled) keys.insert(keys.end(), kPollKeys.begin(), kPollKeys.end());
  return keys;
}

struct CheckName {
  std::string name;
  int line = 0;
};

void load_check(const toml::table& t, Config& config, Diagnostics& diag,
                std::vector<CheckName>& seen) {
  TableReader r(t, "check", diag);
  CheckSpec c;
  c.line = r.position().line;
  c.column = r.position().column;

  auto name = r.get_string("name");
  if (name) {
    if (!valid_group_name(*name)) {
      diag.error(pos_of(r, "name"), "check.name: \"" + *name +
                                        "\" is not a valid check name (1-64 of A-Z a-z 0-9 _ . -)");
    } else {
      auto it = std::find_if(seen.begin(), seen.end(),
                             [&](const CheckName& s) { return s.name == *name; });
      if (it != seen.end()) {
        diag.error(pos_of(r, "name"), "duplicate check name \"" + *name +
                                          "\": already defined at line " +
                                          std::to_string(it->line));
      } else {
        seen.push_back({*name, c.line});
      }
    }
    c.name = *name;
  } else if (r.find("name") == nullptr) {
    diag.error(r.position(), "[[check]] needs a name, e.g. name = \"haproxy\"");
  }
  const std::string label = name ? "[[check]] \"" + *name + "\"" : std::string("[[check]]");

  const CheckTypeInfo* type = nullptr;
  if (const toml::node* n = r.find("type")) {
    const auto* s = n->as_string();
    if (s == nullptr) {
      diag.error(position_of(*n), "check.type: expected a string (one of " + type_names_text() +
                                      "), got " + std::string(type_name(n->type())));
    } else if (auto parsed = parse_check_type(s->get()); !parsed) {
      std::string message =
          "check.type: unknown check type \"" + s->get() + "\"; valid types: " + type_names_text();
      static const std::vector<std::string> kCandidates = [] {
        std::vector<std::string> names;
        for (const auto& t : check_types()) names.emplace_back(t.name);
        return names;
      }();
      if (auto hint = suggest(s->get(), kCandidates); !hint.empty()) {
        message += "; did you mean \"" + std::string(hint) + "\"?";
      }
      diag.error(position_of(*n), std::move(message));
    } else {
      c.type = *parsed;
      type = &check_type_info(*parsed);
    }
  } else {
    diag.error(r.position(), label + " needs a type, one of " + type_names_text());
  }

  if (type == nullptr) {
    // Without a known type the other keys cannot be judged: mark them known
    // (no spurious errors) and report only keys no check type has.
    for (auto key : all_check_keys()) r.find(key);
    r.report_unknown();
    if (name) config.checks.push_back(std::move(c));
    return;
  }

  // Keys of other types: not unknown (a typo hint would mislead) but invalid here.
  const auto valid = keys_of(*type);
  for (auto key : all_check_keys()) {
    if (std::find(valid.begin(), valid.end(), key) != valid.end()) continue;
    r.find(key);
    if (t.contains(key)) {
      const toml::key& k = t.find(key)->first;
      diag.error(position_of(k), "check." + std::string(key) + ": key " + std::string(key) +
                                     " is not valid for check type " + std::string(type->name) +
                                     " (valid keys: " + join(valid) + ")");
    }
  }

  CheckKeyReader keys{r, c, label};
  type->read(keys);

  // Hysteresis (1..1000); a 0 left in the struct is the type default.
  if (auto v = r.get_int("rise", 1, 1000)) c.rise = static_cast<std::uint32_t>(*v);
  if (auto v = r.get_int("fall", 1, 1000)) c.fall = static_cast<std::uint32_t>(*v);

  if (type->polled) {
    const bool interval_given = r.find("interval") != nullptr;
    if (auto v = r.get_duration("interval", kMinInterval, kMaxDuration,
                                "a check needs time between polls")) {
      c.interval = *v;
    }
    auto fast = r.get_duration("fast_interval", kMinInterval, kMaxDuration,
                               "omit it to poll at interval while in transition");
    auto timeout =
        r.get_duration("timeout", 1us, kMaxDuration, "omit it for the default min(interval, 1s)");
    const std::string interval_text =
        format_duration(c.interval) + (interval_given ? "" : ", the default");
    if (fast && *fast > c.interval) {
      diag.error(pos_of(r, "fast_interval"),
                 "check.fast_interval: " + format_duration(*fast) +
                     " is longer than the interval (" + interval_text +
                     "); fast_interval is the faster poll used while rise/fall is in transition");
    }
    if (timeout && *timeout > c.interval) {
      diag.error(pos_of(r, "timeout"), "check.timeout: " + format_duration(*timeout) +
                                           " is longer than the interval (" + interval_text +
                                           "); a poll must finish before the next one is due");
    }
    if (fast) c.fast_interval = *fast;
    if (timeout) c.timeout = *timeout;
  }
  // Absent keys (0) take the type's defaults; an event-driven check gets its
  // fast_interval and timeout from the interval too, so the struct is
  // consistent even though nothing polls it.
  apply_check_defaults(c);

  r.report_unknown();
  config.checks.push_back(std::move(c));
}

std::optional<core::Hold> read_signal(TableReader& r, std::string_view key) {
  static constexpr std::array<std::string_view, 2> kSignals = {"down", "admin-down"};
  auto s = r.get_enum(key, kSignals);
  if (!s) return std::nullopt;
  return *s == "down" ? core::Hold::Down : core::Hold::AdminDown;
}

void load_group(const toml::table& t, Config& config, Diagnostics& diag,
                std::vector<CheckName>& seen, const std::vector<std::string>& check_names) {
  TableReader r(t, "group", diag);
  GroupSpec g;
  g.line = r.position().line;
  g.column = r.position().column;

  if (auto name = r.get_string("name")) {
    if (!valid_group_name(*name)) {
      diag.error(pos_of(r, "name"), "group.name: \"" + *name +
                                        "\" is not a valid group name (1-64 of A-Z a-z 0-9 _ . -)");
    } else {
      auto it = std::find_if(seen.begin(), seen.end(),
                             [&](const CheckName& s) { return s.name == *name; });
      if (it != seen.end()) {
        diag.error(pos_of(r, "name"), "duplicate group name \"" + *name +
                                          "\": already defined at line " +
                                          std::to_string(it->line));
      } else {
        seen.push_back({*name, g.line});
      }
    }
    g.name = *name;
  } else if (r.find("name") == nullptr) {
    diag.error(r.position(),
               "[[group]] needs a name: the group = \"...\" of the sessions it manages");
  }

  if (const toml::node* n = r.find("checks")) {
    const auto* arr = n->as_array();
    if (arr == nullptr) {
      diag.error(position_of(*n), "group.checks: expected an array of check names, got " +
                                      std::string(type_name(n->type())));
    } else if (arr->empty()) {
      diag.error(position_of(*n), "group.checks: must name at least one [[check]]");
    } else {
      for (const toml::node& e : *arr) {
        const auto* s = e.as_string();
        if (s == nullptr) {
          diag.error(position_of(e), "group.checks: expected a check name (a string), got " +
                                         std::string(type_name(e.type())));
          continue;
        }
        const std::string& check = s->get();
        if (std::find(check_names.begin(), check_names.end(), check) == check_names.end()) {
          std::string message = "group.checks: unknown check \"" + check + "\"";
          if (auto hint = suggest(check, check_names); !hint.empty()) {
            message += "; did you mean \"" + std::string(hint) + "\"?";
          } else {
            message += " (no [[check]] has this name)";
          }
          diag.error(position_of(e), std::move(message));
          continue;
        }
        if (std::find(g.checks.begin(), g.checks.end(), check) != g.checks.end()) {
          diag.error(position_of(e), "group.checks: check \"" + check + "\" is listed twice");
          continue;
        }
        g.checks.push_back(check);
      }
    }
  } else {
    diag.error(r.position(),
               (g.name.empty() ? std::string("[[group]]") : "[[group]] \"" + g.name + "\"") +
                   " needs checks = [\"...\"], the [[check]] names it requires");
  }

  if (auto s = read_signal(r, "unhealthy_signal")) g.unhealthy_signal = *s;
  if (auto s = read_signal(r, "maintenance_signal")) g.maintenance_signal = *s;
  // RFC 5880 §4.1: the Diagnostic field is 5 bits.
  if (auto d = r.get_int("diag", 0, 31)) g.diag = static_cast<std::uint8_t>(*d);
  r.report_unknown();
  config.groups.push_back(std::move(g));
}

}  // namespace

// HAProxy proxy names: letters, digits, '-', '_', '.', ':'.
bool valid_proxy_name(std::string_view name) {
  if (name.empty() || name.size() > 255) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == ':';
  });
}

void load_checks(const toml::array& checks, Config& config, Diagnostics& diag) {
  std::vector<CheckName> seen;
  for (const toml::node& n : checks) {
    if (const auto* t = n.as_table()) {
      load_check(*t, config, diag, seen);
    } else {
      diag.error(position_of(n),
                 "check: expected a table ([[check]]), got " + std::string(type_name(n.type())));
    }
  }
}

void load_groups(const toml::array& groups, Config& config, Diagnostics& diag) {
  // Every [[check]] with a name counts, even one with other errors, so a bad
  // check does not also make each group naming it report "unknown check".
  std::vector<std::string> check_names;
  for (const auto& c : config.checks) check_names.push_back(c.name);
  std::vector<CheckName> seen;
  for (const toml::node& n : groups) {
    if (const auto* t = n.as_table()) {
      load_group(*t, config, diag, seen, check_names);
    } else {
      diag.error(position_of(n),
                 "group: expected a table ([[group]]), got " + std::string(type_name(n.type())));
    }
  }
}

void load_health(const toml::table& table, Config& config, Diagnostics& diag) {
  TableReader r(table, "health", diag);
  HealthConfig& h = config.health;
  auto failsafe = r.get_duration("failsafe_timeout", kMinInterval, kMaxDuration,
                                 "the fail-safe needs time for at least one heartbeat");
  auto heartbeat = r.get_duration("heartbeat_interval", kMinInterval, kMaxDuration,
                                  "the ops loop needs time between heartbeats");
  r.report_unknown();
  if (failsafe) h.failsafe_timeout = *failsafe;
  if (heartbeat) h.heartbeat_interval = *heartbeat;
  if ((failsafe || heartbeat) && h.heartbeat_interval >= h.failsafe_timeout) {
    const bool at_heartbeat = heartbeat.has_value();
    diag.error(pos_of(r, at_heartbeat ? "heartbeat_interval" : "failsafe_timeout"),
               std::string(at_heartbeat ? "health.heartbeat_interval" : "health.failsafe_timeout") +
                   ": heartbeat_interval (" + format_duration(h.heartbeat_interval) +
                   (heartbeat ? "" : ", the default") +
                   ") must be shorter than failsafe_timeout (" +
                   format_duration(h.failsafe_timeout) + (failsafe ? "" : ", the default") +
                   "), or the fail-safe fires while the ops loop is healthy");
  }
}

}  // namespace detail
}  // namespace beacon::config
