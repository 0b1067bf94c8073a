// Config loader: good files map onto the structs, every bad file points at
// line:column with a clear message (PKT-07, PKT-08, MH-02, MH-05, MH-09).
#include "beacon/config/config.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "config_test_support.hpp"

namespace beacon::config {
namespace {

using test::BadCase;
using test::dump;
using test::load_ok;

namespace ip = boost::asio::ip;
using core::Duration;

// ---------------------------------------------------------------- good files

TEST(ConfigLoad, ExampleWithEveryKeyRoundTrips) {
  LoadResult r = load_file(std::string(BEACON_SOURCE_DIR) + "/deploy/examples/beacon.toml");
  ASSERT_TRUE(r.errors.empty()) << dump(r);
  ASSERT_TRUE(r.config);
  const Config& c = *r.config;
  EXPECT_EQ(c.daemon.control_socket, "/run/bfd-beacon/control.sock");
  EXPECT_EQ(c.daemon.shutdown_signal, core::Hold::Down);
  EXPECT_EQ(c.daemon.log_level, "info");
  EXPECT_EQ(c.daemon.read_group, "bfd-beacon");
  EXPECT_EQ(c.daemon.admin_group, "bfd-beacon-admin");
  EXPECT_EQ(c.daemon.metrics_listen, "127.0.0.1:9788");
  EXPECT_EQ(c.bfd.params.desired_min_tx, Duration{50'000});
  EXPECT_EQ(c.bfd.params.required_min_rx, Duration{50'000});
  EXPECT_EQ(c.bfd.params.detect_mult, 3);
  EXPECT_EQ(c.bfd.multihop_min_ttl, 254);
  EXPECT_EQ(c.bfd.passive_create_per_second, 100u);
  ASSERT_EQ(c.sessions.size(), 3u);
  ASSERT_EQ(c.accepts.size(), 2u);

  const SessionSpec& s0 = c.sessions[0];
  EXPECT_EQ(s0.peer, ip::make_address("198.18.0.1"));
  EXPECT_EQ(s0.local, ip::make_address("198.18.0.2"));
  EXPECT_EQ(s0.interface, "veth0");
  EXPECT_FALSE(s0.multihop);
  EXPECT_FALSE(s0.passive);
  EXPECT_EQ(s0.group, "web");
  EXPECT_EQ(s0.params.desired_min_tx, Duration{100'000});
  EXPECT_EQ(s0.params.required_min_rx, Duration{100'000});
  EXPECT_EQ(s0.params.detect_mult, 5);
  EXPECT_EQ(s0.min_ttl, 255);  // single hop: always 255
  EXPECT_GT(s0.line, 0);

  const SessionSpec& s1 = c.sessions[1];
  EXPECT_TRUE(s1.peer.is_v6());
  EXPECT_EQ(ip::address_v6(s1.peer.to_v6().to_bytes()), ip::make_address_v6("fe80::1"));
  EXPECT_EQ(s1.interface, "veth1");                       // taken from the %scope
  EXPECT_EQ(s1.params.desired_min_tx, Duration{50'000});  // [bfd] default

  const SessionSpec& s2 = c.sessions[2];
  EXPECT_TRUE(s2.multihop);
  EXPECT_EQ(s2.min_ttl, 250);  // MH-05 override
  EXPECT_EQ(s2.group, "core");
  EXPECT_EQ(s2.params.desired_min_tx, Duration{300'000});
  EXPECT_EQ(s2.params.detect_mult, 3);

  const AcceptSpec& a0 = c.accepts[0];
  EXPECT_EQ(a0.prefix, ip::make_address("198.18.0.0"));
  EXPECT_EQ(a0.prefix_len, 15u);
  EXPECT_EQ(a0.group, "web");
  EXPECT_EQ(a0.max_sessions, 64u);
  EXPECT_FALSE(a0.multihop);
  EXPECT_EQ(a0.interface, "veth0");
  EXPECT_TRUE(a0.params.passive);
  EXPECT_EQ(a0.min_ttl, 255);

  const AcceptSpec& a1 = c.accepts[1];
  EXPECT_EQ(a1.prefix, ip::make_address("fd00:beac::"));
  EXPECT_EQ(a1.prefix_len, 64u);
  EXPECT_TRUE(a1.multihop);
  EXPECT_EQ(a1.min_ttl, 250);
}

TEST(ConfigLoad, MinimalExampleIsValid) {
  LoadResult r = load_file(std::string(BEACON_SOURCE_DIR) + "/deploy/examples/minimal.toml");
  ASSERT_TRUE(r.errors.empty()) << dump(r);
  ASSERT_EQ(r.config->sessions.size(), 1u);
}

TEST(ConfigLoad, DefaultsApplied) {
  Config c = load_ok("[[session]]\npeer = \"198.18.0.1\"\n");
  EXPECT_EQ(c.source, "test.toml");
  EXPECT_EQ(c.daemon.control_socket, "/run/bfd-beacon/control.sock");
  EXPECT_EQ(c.daemon.shutdown_signal, core::Hold::Down);  // issue: default "down"
  EXPECT_EQ(c.daemon.log_level, "info");
  // Access control: the documented group names (root-only until they exist).
  EXPECT_EQ(c.daemon.read_group, "bfd-beacon");
  EXPECT_EQ(c.daemon.admin_group, "bfd-beacon-admin");
  EXPECT_EQ(c.bfd.multihop_min_ttl, 254);
  ASSERT_EQ(c.sessions.size(), 1u);
  const SessionSpec& s = c.sessions[0];
  EXPECT_FALSE(s.local);
  EXPECT_EQ(s.interface, "");
  EXPECT_FALSE(s.multihop);
  EXPECT_FALSE(s.passive);
  EXPECT_FALSE(s.params.passive);
  EXPECT_EQ(s.group, "default");
  EXPECT_EQ(s.params.desired_min_tx, Duration{50'000});
  EXPECT_EQ(s.params.required_min_rx, Duration{50'000});
  EXPECT_EQ(s.params.detect_mult, 3);
  EXPECT_EQ(s.min_ttl, 255);
  EXPECT_EQ(s.line, 1);
  EXPECT_EQ(s.column, 1);
  // [engine]: real-time options all off unless asked for.
  EXPECT_FALSE(c.engine.cpu);
  EXPECT_EQ(c.engine.realtime_priority, 0);
  EXPECT_FALSE(c.engine.lock_memory);
  EXPECT_EQ(c.engine.timer_slot, Duration{50});
  EXPECT_EQ(c.engine.transmit, "send");
}

TEST(ConfigLoad, EngineRealtimeOptions) {
  Config c = load_ok(
      "[engine]\ncpu = 1\nrealtime_priority = 50\nlock_memory = true\ntimer_slot = \"200us\"\n"
      "transmit = \"io_uring\"\n");
  EXPECT_EQ(c.engine.timer_slot, Duration{200});
  EXPECT_EQ(c.engine.transmit, "io_uring");
  ASSERT_TRUE(c.engine.cpu);
  EXPECT_EQ(*c.engine.cpu, 1u);
  EXPECT_EQ(c.engine.realtime_priority, 50);
  EXPECT_TRUE(c.engine.lock_memory);
}

TEST(ConfigLoad, EmptyFileIsValid) {
  Config c = load_ok("");
  EXPECT_TRUE(c.sessions.empty());
  EXPECT_TRUE(c.accepts.empty());
}

TEST(ConfigLoad, MetricsListenEmptyDisablesAndV4V6Accepted) {
  EXPECT_EQ(load_ok("[daemon]\nmetrics_listen = \"\"\n").daemon.metrics_listen, "");
  EXPECT_EQ(load_ok("[daemon]\nmetrics_listen = \"0.0.0.0:80\"\n").daemon.metrics_listen,
            "0.0.0.0:80");
  EXPECT_EQ(load_ok("[daemon]\nmetrics_listen = \"[fd00::1]:65535\"\n").daemon.metrics_listen,
            "[fd00::1]:65535");
  EXPECT_EQ(config::listen_address_error("[::1]:9788"), "");
  EXPECT_NE(config::listen_address_error("[::1]:"), "");
  EXPECT_NE(config::listen_address_error(":9788"), "");
  EXPECT_NE(config::listen_address_error("127.0.0.1:97x"), "");
}

TEST(ConfigLoad, BfdDefaultsFlowIntoSessionsAndAccepts) {
  Config c = load_ok(R"(
[bfd]
desired_min_tx = "10ms"
required_min_rx = "20ms"
detect_multiplier = 7
multihop_min_ttl = 200
passive_create_per_second = 5

[daemon]
shutdown_signal = "admin-down"
log_level = "debug"
control_socket = "/tmp/x.sock"
read_group = "lb-ops"
admin_group = "lb_admin.2"
metrics_listen = "[::1]:19788"

[[session]]
peer = "2001:db8::1"
local = "2001:db8::2"
multihop = true
passive = true
detect_multiplier = 2

[[accept]]
prefix = "10.0.0.0/8"
multihop = true
max_sessions = 1
)");
  EXPECT_EQ(c.daemon.shutdown_signal, core::Hold::AdminDown);
  EXPECT_EQ(c.daemon.log_level, "debug");
  EXPECT_EQ(c.daemon.control_socket, "/tmp/x.sock");
  EXPECT_EQ(c.daemon.read_group, "lb-ops");
  EXPECT_EQ(c.daemon.admin_group, "lb_admin.2");
  EXPECT_EQ(c.daemon.metrics_listen, "[::1]:19788");
  EXPECT_EQ(c.bfd.passive_create_per_second, 5u);
  ASSERT_EQ(c.sessions.size(), 1u);
  EXPECT_EQ(c.sessions[0].params.desired_min_tx, Duration{10'000});
  EXPECT_EQ(c.sessions[0].params.required_min_rx, Duration{20'000});
  EXPECT_EQ(c.sessions[0].params.detect_mult, 2);
  EXPECT_TRUE(c.sessions[0].passive);
  EXPECT_TRUE(c.sessions[0].params.passive);
  EXPECT_EQ(c.sessions[0].min_ttl, 200);  // MH-05: default from [bfd]
  ASSERT_EQ(c.accepts.size(), 1u);
  EXPECT_EQ(c.accepts[0].params.detect_mult, 7);
  EXPECT_EQ(c.accepts[0].min_ttl, 200);
  EXPECT_EQ(c.accepts[0].max_sessions, 1u);
}

TEST(ConfigLoad, LinkLocalWithInterfaceKeyAndScopeId) {
  Config c = load_ok(R"(
[[session]]
peer = "fe80::1"
interface = "lo"
[[session]]
peer = "fe80::2%lo"
interface = "lo"
[[session]]
peer = "fe80::3"
local = "fe80::4%lo"
)");
  ASSERT_EQ(c.sessions.size(), 3u);
  for (const auto& s : c.sessions) {
    EXPECT_EQ(s.interface, "lo");
    // "lo" exists everywhere, so its index is resolved into the scope id.
    EXPECT_NE(s.peer.to_v6().scope_id(), 0u);
  }
  EXPECT_NE(c.sessions[2].local->to_v6().scope_id(), 0u);
}

TEST(ConfigLoad, SameMultihopPeerFromDifferentLocalsIsAllowed) {
  // MH-02: a second session to the same peer needs another local address.
  Config c = load_ok(R"(
[[session]]
peer = "198.19.0.1"
local = "198.18.0.2"
multihop = true
[[session]]
peer = "198.19.0.1"
local = "198.18.0.3"
multihop = true
[[session]]
peer = "198.19.0.1"
)");
  EXPECT_EQ(c.sessions.size(), 3u);
}

TEST(ConfigLoad, SamePeerOnTwoNamedInterfacesIsAllowed) {
  Config c = load_ok(R"(
[[session]]
peer = "fe80::1%veth0"
[[session]]
peer = "fe80::1%veth1"
)");
  EXPECT_EQ(c.sessions.size(), 2u);
}

// ---------------------------------------------------------------- bad files

class BadConfig : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadConfig, PointsAtLineAndColumn) {
  test::expect_error_at(GetParam());
}

const BadCase kBadCases[] = {
    // Syntax errors keep the parser's position.
    {"Syntax", "[daemon]\nlog_level = \n", 2, 13, "syntax error"},
    {"SyntaxDuplicateKey", "[bfd]\ndetect_multiplier = 3\ndetect_multiplier = 4\n", 3, 21,
     "syntax error"},
    // Unknown keys are errors at the key, with a hint.
    {"UnknownKeyTypo", "[bfd]\ndesierd_min_tx = \"50ms\"\n", 2, 1,
     "did you mean \"desired_min_tx\""},
    {"UnknownDaemonKey", "[daemon]\n  socket = \"/x\"\n", 2, 3,
     "unknown key \"socket\" in [daemon]"},
    {"UnknownSessionKey", "[[session]]\npeer = \"198.18.0.1\"\npeers = 1\n", 3, 1,
     "unknown key \"peers\" in [[session]]"},
    {"UnknownAcceptKey", "[[accept]]\nprefix = \"10.0.0.0/8\"\nmax_session = 3\n", 3, 1,
     "did you mean \"max_sessions\""},
    {"UnknownSection", "[deamon]\n", 1, 2, "did you mean \"daemon\""},
    {"EngineUnknownKeyHint", "[engine]\nrealtime_prio = 5\n", 2, 1,
     "did you mean \"realtime_priority\""},
    {"EngineCpuNegative", "[engine]\ncpu = -1\n", 2, 7, "engine.cpu"},
    {"EnginePriorityTooHigh", "[engine]\nrealtime_priority = 100\n", 2, 21,
     "engine.realtime_priority"},
    {"EngineLockMemoryNotBool", "[engine]\nlock_memory = \"yes\"\n", 2, 15, "engine.lock_memory"},
    {"EngineNotTable", "engine = 1\n", 1, 10, "engine: expected a table"},
    {"EngineTimerSlotTooLong", "[engine]\ntimer_slot = \"2ms\"\n", 2, 14,
     "engine.timer_slot: \"2ms\" is out of range 1us..1ms"},
    {"EngineTransmitUnknown", "[engine]\ntransmit = \"sendmmsg\"\n", 2, 12,
     "engine.transmit: \"sendmmsg\" is not one of"},
    {"UnknownSubTable", "[bfd.timers]\nx = 1\n", 1, 6, "unknown key \"timers\" in [bfd]"},
    {"SessionNotArray", "[session]\npeer = \"198.18.0.1\"\n", 1, 2, "write [[session]]"},
    {"DaemonNotTable", "daemon = 1\n", 1, 10, "expected a table"},
    // Types: name the key and the expected type.
    {"MultiplierAsString", "[bfd]\ndetect_multiplier = \"3\"\n", 2, 21,
     "bfd.detect_multiplier: expected an integer (1..255), got a string"},
    {"BoolAsString", "[[session]]\npeer = \"198.18.0.1\"\nmultihop = \"yes\"\n", 3, 12,
     "session.multihop: expected a boolean"},
    {"PeerAsInteger", "[[session]]\npeer = 1\n", 2, 8, "session.peer: expected a string"},
    {"DurationAsInteger", "[bfd]\ndesired_min_tx = 50\n", 2, 18,
     "expected a duration string with a unit"},
    {"MultiplierAsFloat", "[bfd]\ndetect_multiplier = 3.0\n", 2, 21, "got a float"},
    // PKT-07 / PKT-08.
    {"ZeroDesiredMinTx", "[bfd]\ndesired_min_tx = \"0ms\"\n", 2, 18, "must be greater than 0"},
    {"ZeroRequiredMinRx", "[bfd]\nrequired_min_rx = \"0us\"\n", 2, 19,
     "disables failure detection"},
    {"ZeroMultiplier", "[bfd]\ndetect_multiplier = 0\n", 2, 21, "0 is out of range 1..255"},
    {"MultiplierTooBig", "[bfd]\ndetect_multiplier = 256\n", 2, 21, "out of range 1..255"},
    {"ZeroTxInSession", "[[session]]\npeer = \"198.18.0.1\"\ndesired_min_tx = \"0s\"\n", 3, 18,
     "session.desired_min_tx: must be greater than 0"},
    {"ZeroMultiplierInAccept", "[[accept]]\nprefix = \"10.0.0.0/8\"\ndetect_multiplier = 0\n", 3,
     21, "accept.detect_multiplier"},
    {"DurationNoUnit", "[bfd]\ndesired_min_tx = \"50\"\n", 2, 18, "missing unit"},
    {"DurationMinutes", "[bfd]\ndesired_min_tx = \"1m\"\n", 2, 18, "unknown unit \"m\""},
    {"DurationNegative", "[bfd]\nrequired_min_rx = \"-1ms\"\n", 2, 19, "negative"},
    {"DurationSubMicro", "[bfd]\nrequired_min_rx = \"0.5us\"\n", 2, 19,
     "finer than one microsecond"},
    {"DurationTooLarge", "[bfd]\ndesired_min_tx = \"4295s\"\n", 2, 18, "exceeds 4294967295us"},
    // [daemon]
    {"BadShutdownSignal", "[daemon]\nshutdown_signal = \"admin_down\"\n", 2, 19,
     "\"admin_down\" is not one of \"down\", \"admin-down\""},
    {"BadLogLevel", "[daemon]\nlog_level = \"verbose\"\n", 2, 13, "is not one of \"trace\""},
    {"EmptyControlSocket", "[daemon]\ncontrol_socket = \"\"\n", 2, 18, "non-empty path"},
    {"LongControlSocket",
     "[daemon]\ncontrol_socket = "
     "\"/run/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaa\"\n",
     2, 18, "at most 107 bytes"},
    {"EmptyReadGroup", "[daemon]\nread_group = \"\"\n", 2, 14,
     "daemon.read_group: must be a group name of 1 to 32 characters"},
    {"LongAdminGroup", "[daemon]\nadmin_group = \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"\n", 2, 15,
     "daemon.admin_group: must be a group name of 1 to 32 characters"},
    {"ReadGroupWithSpace", "[daemon]\nread_group = \"bfd beacon\"\n", 2, 14,
     "daemon.read_group: not a valid group name"},
    {"AdminGroupWithColon", "[daemon]\nadmin_group = \"adm:x\"\n", 2, 15,
     "daemon.admin_group: not a valid group name"},
    {"AdminGroupLeadingDash", "[daemon]\nadmin_group = \"-admin\"\n", 2, 15,
     "must not start with '-'"},
    {"ReadGroupNumeric", "[daemon]\nread_group = \"1001\"\n", 2, 14,
     "daemon.read_group: give the group's name, not its gid"},
    {"ReadGroupNotAString", "[daemon]\nread_group = 1001\n", 2, 14,
     "daemon.read_group: expected a string"},
    {"MetricsListenNoPort", "[daemon]\nmetrics_listen = \"127.0.0.1\"\n", 2, 18,
     "daemon.metrics_listen: missing port"},
    {"MetricsListenBadPort", "[daemon]\nmetrics_listen = \"127.0.0.1:70000\"\n", 2, 18,
     "port '70000' is not within 1..65535"},
    {"MetricsListenZeroPort", "[daemon]\nmetrics_listen = \"127.0.0.1:0\"\n", 2, 18,
     "port '0' is not within 1..65535"},
    {"MetricsListenHostName", "[daemon]\nmetrics_listen = \"localhost:9788\"\n", 2, 18,
     "'localhost' is not an IP address"},
    {"MetricsListenV6NoBrackets", "[daemon]\nmetrics_listen = \"::1:9788\"\n", 2, 18,
     "an IPv6 address needs brackets"},
    {"MetricsListenV4Brackets", "[daemon]\nmetrics_listen = \"[127.0.0.1]:9788\"\n", 2, 18,
     "only an IPv6 address takes brackets"},
    {"MetricsListenNotAString", "[daemon]\nmetrics_listen = 9788\n", 2, 18,
     "daemon.metrics_listen: expected a string"},
    // [bfd] extensions
    {"ZeroMinTtl", "[bfd]\nmultihop_min_ttl = 0\n", 2, 20, "out of range 1..255"},
    {"ZeroCreateRate", "[bfd]\npassive_create_per_second = 0\n", 2, 29, "out of range"},
    // [[session]]
    {"MissingPeer", "[bfd]\n\n[[session]]\ngroup = \"web\"\n", 3, 1, "needs a peer address"},
    {"BadPeer", "[[session]]\npeer = \"198.18.0.300\"\n", 2, 8, "not an IPv4 or IPv6 address"},
    {"MulticastPeer", "[[session]]\npeer = \"224.0.0.1\"\n", 2, 8, "not a unicast address"},
    {"UnspecifiedPeer", "[[session]]\npeer = \"::\"\n", 2, 8, "not a unicast address"},
    {"MappedPeer", "[[session]]\npeer = \"::ffff:198.18.0.1\"\n", 2, 8,
     "write the IPv4 address \"198.18.0.1\""},
    {"ScopeOnGlobal", "[[session]]\npeer = \"2001:db8::1%veth0\"\n", 2, 8,
     "only valid on a link-local"},
    {"LinkLocalNoInterface", "[[session]]\npeer = \"fe80::1\"\n", 2, 8,
     "needs an interface: write \"fe80::1%veth0\""},
    {"ScopeMismatch", "[[session]]\npeer = \"fe80::1%veth0\"\ninterface = \"veth1\"\n", 2, 8,
     "scope %veth0 does not match interface = \"veth1\""},
    {"BadInterfaceName", "[[session]]\npeer = \"198.18.0.1\"\ninterface = \"a/b\"\n", 3, 13,
     "not a valid interface name"},
    {"InterfaceTooLong", "[[session]]\npeer = \"198.18.0.1\"\ninterface = \"abcdefghijklmnop\"\n",
     3, 13, "not a valid interface name"},
    {"BadGroup", "[[session]]\npeer = \"198.18.0.1\"\ngroup = \"a b\"\n", 3, 9,
     "not a valid group name"},
    {"MixedFamilies", "[[session]]\npeer = \"198.18.0.1\"\nlocal = \"fd00::2\"\n", 3, 9,
     "is IPv6 but the peer 198.18.0.1 is IPv4"},
    {"LocalEqualsPeer", "[[session]]\npeer = \"198.18.0.1\"\nlocal = \"198.18.0.1\"\n", 3, 9,
     "same address as the peer"},
    // MH-02 / MH-09: multihop pins the local address and binds no interface.
    {"MultihopNeedsLocal", "[[session]]\npeer = \"198.19.0.1\"\nmultihop = true\n", 3, 12,
     "needs a local address"},
    {"MultihopWithInterface",
     "[[session]]\npeer = \"198.19.0.1\"\nlocal = \"198.18.0.2\"\nmultihop = true\n"
     "interface = \"veth0\"\n",
     5, 13, "must not be bound to an interface"},
    {"MultihopLinkLocal",
     "[[session]]\npeer = \"fe80::1%veth0\"\nlocal = \"fd00::1\"\nmultihop = true\n", 2, 8,
     "multihop sessions cannot use the link-local"},
    {"MinTtlOnSingleHop", "[[session]]\npeer = \"198.18.0.1\"\nmin_ttl = 254\n", 3, 11,
     "only for multihop"},
    {"MinTtlZero",
     "[[session]]\npeer = \"198.19.0.1\"\nlocal = \"198.18.0.2\"\nmultihop = true\nmin_ttl = 0\n",
     5, 11, "out of range 1..255"},
    {"DuplicateSingleHop",
     "[[session]]\npeer = \"198.18.0.1\"\n\n[[session]]\n  peer = \"198.18.0.1\"\n", 5, 10,
     "duplicate single-hop session to 198.18.0.1 on any interface: already defined at line 1"},
    {"DuplicateOverlapsAnyInterface",
     "[[session]]\npeer = \"198.18.0.1\"\ninterface = \"veth0\"\n[[session]]\npeer = "
     "\"198.18.0.1\"\n",
     5, 8, "overlaps"},
    {"DuplicateLinkLocalScopeVsKey",
     "[[session]]\npeer = \"fe80::1%veth0\"\n[[session]]\npeer = \"fe80::1\"\ninterface = "
     "\"veth0\"\n",
     4, 8, "duplicate"},
    {"DuplicateMultihopPair",
     "[[session]]\npeer = \"198.19.0.1\"\nlocal = \"198.18.0.2\"\nmultihop = true\n"
     "[[session]]\npeer = \"198.19.0.1\"\nlocal = \"198.18.0.2\"\nmultihop = true\n"
     "interface_x = 1\n",
     6, 8, "MH-02"},
    {"SessionArrayElementNotTable", "session = [1]\n", 1, 12, "expected a table"},
    // [[accept]]
    {"AcceptMissingPrefix", "[[accept]]\ngroup = \"web\"\n", 1, 1, "needs a prefix"},
    {"AcceptHostBits", "[[accept]]\nprefix = \"198.18.0.1/15\"\n", 2, 10,
     "host bits are set; did you mean \"198.18.0.0/15\"?"},
    {"AcceptHostBitsV6", "[[accept]]\nprefix = \"fd00::1/64\"\n", 2, 10,
     "did you mean \"fd00::/64\"?"},
    {"AcceptNoLength", "[[accept]]\nprefix = \"198.18.0.0\"\n", 2, 10, "expected ADDRESS/LENGTH"},
    {"AcceptLengthTooBig", "[[accept]]\nprefix = \"198.18.0.0/33\"\n", 2, 10, "must be 0..32"},
    {"AcceptLengthGarbage", "[[accept]]\nprefix = \"fd00::/6x\"\n", 2, 10, "must be 0..128"},
    {"AcceptMaxSessionsZero", "[[accept]]\nprefix = \"10.0.0.0/8\"\nmax_sessions = 0\n", 3, 16,
     "out of range 1..16384"},
    {"AcceptMultihopInterface",
     "[[accept]]\nprefix = \"10.0.0.0/8\"\nmultihop = true\ninterface = \"eth0\"\n", 4, 13,
     "MH-09"},
    {"AcceptMinTtlSingleHop", "[[accept]]\nprefix = \"10.0.0.0/8\"\nmin_ttl = 3\n", 3, 11,
     "only for multihop"},
    {"AcceptLinkLocalNoInterface", "[[accept]]\nprefix = \"fe80::/64\"\n", 2, 10,
     "needs interface"},
    {"AcceptDuplicate",
     "[[accept]]\nprefix = \"10.0.0.0/8\"\n[[accept]]\nprefix = \"10.0.0.0/8\"\n", 4, 10,
     "duplicate accept rule for 10.0.0.0/8: already defined at line 1"},
};

INSTANTIATE_TEST_SUITE_P(Table, BadConfig, ::testing::ValuesIn(kBadCases),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(ConfigErrors, AllErrorsCollectedAndSortedByPosition) {
  LoadResult r = load_string(R"([[session]]
peer = "198.19.0.1"
multihop = true
min_ttl = "x"

[bfd]
detect_multiplier = 0
desired_min_tx = "5"
tpyo = 1

[daemon]
log_level = 3
)",
                             "multi.toml");
  EXPECT_FALSE(r.config);
  ASSERT_EQ(r.errors.size(), 6u) << dump(r);
  std::vector<std::pair<int, int>> positions;
  for (const auto& e : r.errors) positions.emplace_back(e.line, e.column);
  const std::vector<std::pair<int, int>> want = {{3, 12}, {4, 11}, {7, 21},
                                                 {8, 18}, {9, 1},  {12, 13}};
  EXPECT_EQ(positions, want) << dump(r);
}

TEST(ConfigErrors, FormatIsFileLineColumnMessage) {
  EXPECT_EQ((ConfigError{"a.toml", 3, 7, "bad"}).format(), "a.toml:3:7: bad");
  EXPECT_EQ((ConfigError{"a.toml", 3, 0, "bad"}).format(), "a.toml:3: bad");
  EXPECT_EQ((ConfigError{"a.toml", 0, 0, "bad"}).format(), "a.toml: bad");
  LoadResult r = load_string("[bfd]\ndetect_multiplier = 0\n", "/etc/bfd-beacon/beacon.toml");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].format(),
            "/etc/bfd-beacon/beacon.toml:2:21: bfd.detect_multiplier: 0 is out of range 1..255");
}

TEST(ConfigErrors, MissingFile) {
  LoadResult r = load_file("/nonexistent/beacon.toml");
  EXPECT_FALSE(r.config);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].format(),
            "/nonexistent/beacon.toml: cannot open: No such file or directory");
}

TEST(ConfigErrors, DirectoryIsNotAFile) {
  LoadResult r = load_file("/");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].format(), "/: cannot open: Is a directory");
}

TEST(ConfigErrors, LoadFileReportsFileName) {
  char path[] = "/tmp/beacon_config_test_XXXXXX";
  const int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  const std::string text = "[bfd]\n\ndetect_multiplier = \"3\"\n";
  ASSERT_EQ(::write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  ::close(fd);
  LoadResult r = load_file(path);
  ::unlink(path);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].format().rfind(std::string(path) + ":3:21: bfd.detect_multiplier", 0), 0u)
      << r.errors[0].format();
}

TEST(ConfigErrors, InvalidUtf8IsASyntaxErrorNotACrash) {
  LoadResult r = load_string("[daemon]\nlog_level = \"\xff\xfe\"\n", "u.toml");
  ASSERT_FALSE(r.errors.empty());
  EXPECT_EQ(r.errors[0].line, 2);
}

TEST(ConfigErrors, NulInStringIsRejected) {
  using namespace std::string_literals;
  LoadResult r = load_string("[daemon]\ncontrol_socket = \"/a\\u0000b\"\n"s, "n.toml");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].line, 2);
}

// ---------------------------------------------------------------- durations

struct DurationCase {
  const char* text;
  std::optional<std::int64_t> micros;
};

TEST(ParseDuration, Table) {
  const DurationCase cases[] = {
      {"50ms", 50'000},
      {"300us", 300},
      {"1s", 1'000'000},
      {"1.5s", 1'500'000},
      {"0.000001s", 1},
      {"1.500ms", 1'500},
      {"2.0us", 2},
      {"0ms", 0},  // parses; the loader rejects zero intervals (PKT-07)
      {"4294967295us", 4'294'967'295},
      {"1000000000000s", 1'000'000'000'000'000'000},
      {"50", std::nullopt},          // unit is mandatory
      {"0.5us", std::nullopt},       // sub-microsecond
      {"0.0001ms", std::nullopt},    // sub-microsecond
      {"1.0000001s", std::nullopt},  // sub-microsecond
      {"-1ms", std::nullopt},
      {"+1ms", std::nullopt},
      {"1m", std::nullopt},  // minutes are not a unit here
      {"1h", std::nullopt},
      {"1ns", std::nullopt},
      {"1MS", std::nullopt},
      {"50 ms", std::nullopt},
      {" 50ms", std::nullopt},
      {"50ms ", std::nullopt},
      {"ms", std::nullopt},
      {".5s", std::nullopt},
      {"5.s", std::nullopt},
      {"", std::nullopt},
      {"1e3ms", std::nullopt},
      {"1000000000001s", std::nullopt},  // too large
      {"99999999999999999999999999s", std::nullopt},
  };
  for (const auto& c : cases) {
    auto d = parse_duration(c.text);
    if (c.micros) {
      ASSERT_TRUE(d) << c.text;
      EXPECT_EQ(d->count(), *c.micros) << c.text;
    } else {
      EXPECT_FALSE(d) << c.text << " parsed as " << d->count();
    }
  }
}

// ---------------------------------------------------------------- AcceptSpec

AcceptSpec rule(const char* prefix, unsigned len) {
  AcceptSpec a;
  a.prefix = ip::make_address(prefix);
  a.prefix_len = len;
  return a;
}

TEST(AcceptSpecContains, IPv4) {
  const AcceptSpec r15 = rule("198.18.0.0", 15);
  EXPECT_TRUE(r15.contains(ip::make_address("198.18.0.0")));
  EXPECT_TRUE(r15.contains(ip::make_address("198.19.255.255")));
  EXPECT_FALSE(r15.contains(ip::make_address("198.20.0.0")));
  EXPECT_FALSE(r15.contains(ip::make_address("198.17.255.255")));
  EXPECT_FALSE(r15.contains(ip::make_address("fd00::1")));  // family mismatch
  // A v4 peer seen through a dual-stack socket.
  EXPECT_TRUE(r15.contains(ip::make_address("::ffff:198.18.1.1")));
  EXPECT_FALSE(r15.contains(ip::make_address("::ffff:10.0.0.1")));

  const AcceptSpec all = rule("0.0.0.0", 0);
  EXPECT_TRUE(all.contains(ip::make_address("255.255.255.255")));
  EXPECT_TRUE(all.contains(ip::make_address("0.0.0.1")));
  EXPECT_FALSE(all.contains(ip::make_address("::1")));

  const AcceptSpec host = rule("198.18.0.1", 32);
  EXPECT_TRUE(host.contains(ip::make_address("198.18.0.1")));
  EXPECT_FALSE(host.contains(ip::make_address("198.18.0.0")));
  EXPECT_FALSE(host.contains(ip::make_address("198.18.0.3")));

  const AcceptSpec r31 = rule("10.0.0.0", 31);
  EXPECT_TRUE(r31.contains(ip::make_address("10.0.0.1")));
  EXPECT_FALSE(r31.contains(ip::make_address("10.0.0.2")));

  EXPECT_FALSE(rule("10.0.0.0", 33).contains(ip::make_address("10.0.0.0")));  // corrupt spec
}

TEST(AcceptSpecContains, IPv6) {
  const AcceptSpec r64 = rule("fd00:beac::", 64);
  EXPECT_TRUE(r64.contains(ip::make_address("fd00:beac::1")));
  EXPECT_TRUE(r64.contains(ip::make_address("fd00:beac::ffff:ffff:ffff:ffff")));
  EXPECT_FALSE(r64.contains(ip::make_address("fd00:beac:0:1::")));
  EXPECT_FALSE(r64.contains(ip::make_address("198.18.0.1")));

  const AcceptSpec r12 = rule("fd00::", 12);  // boundary inside a byte
  EXPECT_TRUE(r12.contains(ip::make_address("fd0f:ffff::")));
  EXPECT_FALSE(r12.contains(ip::make_address("fd10::")));

  const AcceptSpec all = rule("::", 0);
  EXPECT_TRUE(all.contains(ip::make_address("ffff::1")));
  EXPECT_FALSE(all.contains(ip::make_address("10.0.0.1")));

  const AcceptSpec host = rule("fd00::1", 128);
  EXPECT_TRUE(host.contains(ip::make_address("fd00::1")));
  EXPECT_FALSE(host.contains(ip::make_address("fd00::2")));

  const AcceptSpec r127 = rule("fd00::", 127);
  EXPECT_TRUE(r127.contains(ip::make_address("fd00::1")));
  EXPECT_FALSE(r127.contains(ip::make_address("fd00::2")));

  // Scope ids do not matter; the interface key restricts link-local rules.
  const AcceptSpec ll = rule("fe80::", 64);
  EXPECT_TRUE(ll.contains(ip::make_address("fe80::1%1")));
}

TEST(AcceptSpecContains, LoadedRuleMatchesItsRange) {
  Config c = load_ok("[[accept]]\nprefix = \"198.18.0.0/15\"\n");
  ASSERT_EQ(c.accepts.size(), 1u);
  EXPECT_TRUE(c.accepts[0].contains(ip::make_address("198.19.1.2")));
  EXPECT_FALSE(c.accepts[0].contains(ip::make_address("198.20.1.2")));
}

}  // namespace
}  // namespace beacon::config
