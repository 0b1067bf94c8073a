// [[session]] (configured peers) and [[accept]] (passive sessions from
// prefixes): per-entry validation and cross-entry duplicate checks.
#include <array>

#include "config_sections.hpp"

namespace beacon::config::detail {

namespace {

namespace ip = boost::asio::ip;

// Source ports 49152-65535 give at most this many sessions (one port each).
constexpr std::int64_t kMaxSessionsPerRule = 16384;

ip::address without_scope(const ip::address& a) {
  if (!a.is_v6()) return a;
  return ip::address_v6(a.to_v6().to_bytes());
}

ip::address with_scope(const ip::address& a, const std::string& interface) {
  if (!is_link_local(a) || interface.empty()) return a;
  auto v6 = a.to_v6();
  v6.scope_id(interface_index(interface));  // 0 if absent here; the engine re-resolves
  return v6;
}

Position pos_of(TableReader& r, std::string_view key) {
  const toml::node* n = r.find(key);
  return n != nullptr ? position_of(*n) : r.position();
}

std::optional<std::string> read_interface(TableReader& r) {
  auto name = r.get_string("interface");
  if (name && !valid_interface_name(*name)) {
    r.diag().error(pos_of(r, "interface"),
                   r.qualified("interface") + ": \"" + *name +
                       "\" is not a valid interface name (1-15 bytes, no '/', ':' or spaces)");
    return std::nullopt;
  }
  return name;
}

void read_group(TableReader& r, std::string& group) {
  auto g = r.get_string("group");
  if (!g) return;
  if (!valid_group_name(*g)) {
    r.diag().error(pos_of(r, "group"),
                   r.qualified("group") + ": \"" + *g +
                       "\" is not a valid group name (1-64 of A-Z a-z 0-9 _ . -)");
    return;
  }
  group = *g;
}

std::optional<ParsedAddress> read_address(TableReader& r, std::string_view key) {
  auto text = r.get_string(key);
  if (!text) return std::nullopt;
  std::string why;
  auto a = parse_address(*text, why);
  if (!a) r.diag().error(pos_of(r, key), r.qualified(key) + ": " + why);
  return a;
}

// Checks the scope / interface / link-local rules for one endpoint address.
// `interface` is the interface key, or else the scope written on an address.
void check_scope(TableReader& r, std::string_view key, const ParsedAddress& a, bool multihop,
                 bool interface_key, const std::string& interface) {
  const Position at = pos_of(r, key);
  const std::string text = a.address.to_string();
  if (is_link_local(a.address) && multihop) {
    r.diag().error(
        at, r.qualified(key) + ": multihop sessions cannot use the link-local address " + text);
    return;
  }
  if (!a.scope.empty() && !interface.empty() && interface != a.scope) {
    r.diag().error(at,
                   r.qualified(key) + ": scope %" + a.scope +
                       (interface_key ? " does not match interface = \"" + interface + "\""
                                      : " differs from the other address's scope %" + interface));
    return;
  }
  if (is_link_local(a.address) && interface.empty() && !interface_key) {
    r.diag().error(at, r.qualified(key) + ": link-local address " + text +
                           " needs an interface: write \"" + text +
                           "%veth0\" or set interface = \"veth0\"");
  }
}

// unhealthy_signal / maintenance_signal of a [[session]]: overrides of its
// [[group]]'s, same values.
std::optional<core::Hold> read_session_signal(TableReader& r, std::string_view key) {
  static constexpr std::array<std::string_view, 2> kSignals = {"down", "admin-down"};
  auto v = r.get_enum(key, kSignals);
  if (!v) return std::nullopt;
  return *v == "down" ? core::Hold::Down : core::Hold::AdminDown;
}

struct SessionKey {
  ip::address peer;
  std::optional<ip::address> local;
  std::string interface;
  bool multihop = false;
  int line = 0;
};

std::string describe(const SessionKey& k) {
  if (k.multihop) {
    return "multihop session " + (k.local ? k.local->to_string() : std::string("?")) + " -> " +
           k.peer.to_string();
  }
  return "single-hop session to " + k.peer.to_string() + " on " +
         (k.interface.empty() ? std::string("any interface") : "interface " + k.interface);
}

// MH-02: one multihop session per (local, peer); single hop: one session per
// peer and interface, where "any interface" overlaps every named one because
// a packet from the peer could match either.
std::optional<std::string> conflict(const SessionKey& a, const SessionKey& b) {
  if (a.multihop != b.multihop || a.peer != b.peer) return std::nullopt;
  if (a.multihop) {
    if (!a.local || !b.local || *a.local != *b.local) return std::nullopt;
    return "duplicate " + describe(b) + ": already defined at line " + std::to_string(a.line) +
           " (RFC 5883 allows one multihop session per address pair, MH-02)";
  }
  if (a.interface == b.interface) {
    return "duplicate " + describe(b) + ": already defined at line " + std::to_string(a.line);
  }
  if (a.interface.empty() || b.interface.empty()) {
    return describe(b) + " overlaps the " + describe(a) + " at line " + std::to_string(a.line) +
           ": a packet from the peer could match either";
  }
  return std::nullopt;
}

void load_session(const toml::table& t, Config& config, Diagnostics& diag,
                  std::vector<SessionKey>& seen) {
  TableReader r(t, "session", diag);
  SessionSpec s;
  s.line = r.position().line;
  s.column = r.position().column;
  s.params = config.bfd.params;
  auto peer = read_address(r, "peer");
  auto local = read_address(r, "local");
  auto interface = read_interface(r);
  const bool interface_key = r.find("interface") != nullptr;
  s.multihop = r.get_bool("multihop").value_or(false);
  s.passive = r.get_bool("passive").value_or(false);
  s.params.passive = s.passive;
  read_group(r, s.group);
  read_timers(r, s.params);
  auto min_ttl = r.get_int("min_ttl", 1, 255);
  s.unhealthy_signal = read_session_signal(r, "unhealthy_signal");
  s.maintenance_signal = read_session_signal(r, "maintenance_signal");
  s.auth = config.bfd.auth;
  read_auth(r, s.auth);
  r.report_unknown();

  if (interface) s.interface = *interface;
  if (r.find("peer") == nullptr) diag.error(r.position(), "[[session]] needs a peer address");
  if (s.multihop && interface_key) {
    diag.error(pos_of(r, "interface"),
               "session.interface: multihop sessions must not be bound to an interface; the "
               "local address pins the session (MH-09)");
  }
  if (s.multihop && r.find("local") == nullptr) {
    diag.error(pos_of(r, "multihop"),
               "session.multihop: a multihop session needs a local address: RFC 5883 maps "
               "sessions by (local, peer) address pair (MH-02, MH-09)");
  }
  if (s.multihop) {
    s.min_ttl = static_cast<std::uint8_t>(min_ttl.value_or(config.bfd.multihop_min_ttl));
  } else if (r.find("min_ttl") != nullptr) {
    diag.error(pos_of(r, "min_ttl"),
               "session.min_ttl: only for multihop sessions; single hop always requires TTL 255 "
               "(RFC 5881 §5)");
  }
  if (!interface_key) {
    if (peer && !peer->scope.empty()) {
      s.interface = peer->scope;
    } else if (local && !local->scope.empty()) {
      s.interface = local->scope;
    }
  }
  if (peer) check_scope(r, "peer", *peer, s.multihop, interface_key, s.interface);
  if (local) check_scope(r, "local", *local, s.multihop, interface_key, s.interface);
  if (peer && local) {
    if (peer->address.is_v4() != local->address.is_v4()) {
      diag.error(pos_of(r, "local"), "session.local: " + local->address.to_string() + " is " +
                                         (local->address.is_v4() ? "IPv4" : "IPv6") +
                                         " but the peer " + peer->address.to_string() + " is " +
                                         (peer->address.is_v4() ? "IPv4" : "IPv6"));
    } else if (peer->address == local->address) {
      diag.error(pos_of(r, "local"), "session.local: the same address as the peer");
    }
  }
  if (!peer) return;
  s.peer = with_scope(peer->address, s.interface);
  if (local) s.local = with_scope(local->address, s.interface);

  SessionKey key{without_scope(peer->address),
                 local ? std::optional(without_scope(local->address)) : std::nullopt, s.interface,
                 s.multihop, s.line};
  for (const auto& earlier : seen) {
    if (auto message = conflict(earlier, key)) {
      diag.error(pos_of(r, "peer"), *message);
      break;
    }
  }
  seen.push_back(std::move(key));
  config.sessions.push_back(std::move(s));
}

void load_accept(const toml::table& t, Config& config, Diagnostics& diag,
                 std::vector<const AcceptSpec*>& seen) {
  TableReader r(t, "accept", diag);
  AcceptSpec a;
  a.line = r.position().line;
  a.column = r.position().column;
  a.params = config.bfd.params;
  a.params.passive = true;  // §6.1: accepted sessions wait for the peer
  std::optional<ParsedPrefix> prefix;
  if (auto text = r.get_string("prefix")) {
    std::string why;
    prefix = parse_prefix(*text, why);
    if (!prefix) diag.error(pos_of(r, "prefix"), "accept.prefix: " + why);
  }
  read_group(r, a.group);
  if (auto m = r.get_int("max_sessions", 1, kMaxSessionsPerRule)) {
    a.max_sessions = static_cast<std::uint32_t>(*m);
  }
  a.multihop = r.get_bool("multihop").value_or(false);
  auto interface = read_interface(r);
  const bool interface_key = r.find("interface") != nullptr;
  read_timers(r, a.params);
  auto min_ttl = r.get_int("min_ttl", 1, 255);
  a.auth = config.bfd.auth;
  read_auth(r, a.auth);
  r.report_unknown();

  if (interface) a.interface = *interface;
  if (r.find("prefix") == nullptr) {
    diag.error(r.position(), "[[accept]] needs a prefix, e.g. prefix = \"198.18.0.0/15\"");
  }
  if (a.multihop && interface_key) {
    diag.error(pos_of(r, "interface"),
               "accept.interface: multihop sessions must not be bound to an interface (MH-09)");
  }
  if (a.multihop) {
    a.min_ttl = static_cast<std::uint8_t>(min_ttl.value_or(config.bfd.multihop_min_ttl));
  } else if (r.find("min_ttl") != nullptr) {
    diag.error(pos_of(r, "min_ttl"),
               "accept.min_ttl: only for multihop rules; single hop always requires TTL 255 "
               "(RFC 5881 §5)");
  }
  if (!prefix) return;
  a.prefix = prefix->address;
  a.prefix_len = prefix->length;
  // Rules inside fe80::/10 only ever match link-local peers.
  if (prefix->length >= 10 && is_link_local(prefix->address)) {
    if (a.multihop) {
      diag.error(pos_of(r, "prefix"),
                 "accept.prefix: multihop rules cannot use link-local "
                 "addresses");
    } else if (!interface_key) {
      diag.error(pos_of(r, "prefix"),
                 "accept.prefix: a link-local prefix needs interface = \"...\"");
    }
  }
  for (const AcceptSpec* earlier : seen) {
    if (earlier->prefix == a.prefix && earlier->prefix_len == a.prefix_len &&
        earlier->multihop == a.multihop && earlier->interface == a.interface) {
      diag.error(pos_of(r, "prefix"), "duplicate accept rule for " + a.prefix.to_string() + "/" +
                                          std::to_string(a.prefix_len) +
                                          ": already defined at line " +
                                          std::to_string(earlier->line));
      break;
    }
  }
  config.accepts.push_back(std::move(a));
  seen.push_back(&config.accepts.back());
}

}  // namespace

void load_sessions(const toml::array& sessions, Config& config, Diagnostics& diag) {
  std::vector<SessionKey> seen;
  for (const toml::node& n : sessions) {
    if (const auto* t = n.as_table()) {
      load_session(*t, config, diag, seen);
    } else {
      diag.error(position_of(n), "session: expected a table ([[session]]), got " +
                                     std::string(type_name(n.type())));
    }
  }
}

void load_accepts(const toml::array& accepts, Config& config, Diagnostics& diag) {
  config.accepts.reserve(accepts.size());  // `seen` points into the vector
  std::vector<const AcceptSpec*> seen;
  for (const toml::node& n : accepts) {
    if (const auto* t = n.as_table()) {
      load_accept(*t, config, diag, seen);
    } else {
      diag.error(position_of(n),
                 "accept: expected a table ([[accept]]), got " + std::string(type_name(n.type())));
    }
  }
}

}  // namespace beacon::config::detail
