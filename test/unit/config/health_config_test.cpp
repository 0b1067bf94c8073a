// Config loader, health part (issue 3): [[check]], [[group]] and [health].
// Good files map onto CheckSpec / GroupSpec / HealthConfig with every default
// resolved; every bad file points at line:column with a clear message.
#include <gtest/gtest.h>

#include <string>

#include "beacon/config/config.hpp"
#include "config_test_support.hpp"

namespace beacon::config {
namespace {

using test::BadCase;
using test::dump;
using test::load_ok;

using core::Duration;
using namespace std::chrono_literals;

const CheckSpec* find_check(const Config& c, std::string_view name) {
  for (const auto& k : c.checks) {
    if (k.name == name) return &k;
  }
  return nullptr;
}

// The config block of issue 3, verbatim: these keys are the contract.
constexpr std::string_view kIssueExample = R"([[check]]
name = "haproxy"
type = "haproxy-http"          # GET url, pass on expect_status
url = "http://127.0.0.1:8405/beacon-health"
expect_status = 200
interval = "200ms"
timeout = "150ms"
rise = 3
fall = 2

[[check]]
name = "haproxy-stats"
type = "haproxy-socket"        # Runtime API
socket = "/run/haproxy/admin.sock"
backend = "web"                # optional: fail when fewer than min_servers_up are UP
min_servers_up = 1
interval = "500ms"

[[check]]
name = "haproxy-proc"
type = "haproxy-process"       # pidfd on the PID in pidfile; instant
pidfile = "/run/haproxy.pid"

[[check]]
name = "uplink"
type = "interface"             # netlink events; instant
interface = "eth1"

[[check]]
name = "maint"
type = "file"                  # present = maintenance; inotify; instant
path = "/etc/bfd-beacon/maintenance"

[[check]]
name = "custom"
type = "exec"
command = ["/usr/local/bin/my-check", "--quick"]
interval = "1s"
timeout = "500ms"

[[group]]
name = "web"
checks = ["haproxy", "haproxy-proc", "uplink", "maint"]
unhealthy_signal = "down"      # down | admin-down
maintenance_signal = "down"
diag = 5
)";

void expect_issue_checks(const Config& c) {
  ASSERT_EQ(c.checks.size(), 6u);
  // Order of the file is kept.
  EXPECT_EQ(c.checks[0].name, "haproxy");
  EXPECT_EQ(c.checks[5].name, "custom");

  const CheckSpec* http = find_check(c, "haproxy");
  ASSERT_NE(http, nullptr);
  EXPECT_EQ(http->type, CheckType::HaproxyHttp);
  EXPECT_EQ(http->url, "http://127.0.0.1:8405/beacon-health");
  EXPECT_EQ(http->expect_status, 200);
  EXPECT_EQ(http->interval, 200ms);
  EXPECT_EQ(http->fast_interval, 200ms);  // resolved: same as interval
  EXPECT_EQ(http->timeout, 150ms);
  EXPECT_EQ(http->rise, 3u);
  EXPECT_EQ(http->fall, 2u);
  EXPECT_FALSE(http->event_driven());
  EXPECT_GT(http->line, 0);
  EXPECT_EQ(http->column, 1);

  const CheckSpec* sock = find_check(c, "haproxy-stats");
  ASSERT_NE(sock, nullptr);
  EXPECT_EQ(sock->type, CheckType::HaproxySocket);
  EXPECT_EQ(sock->socket, "/run/haproxy/admin.sock");
  EXPECT_EQ(sock->backend, "web");
  EXPECT_EQ(sock->min_servers_up, 1u);
  EXPECT_EQ(sock->interval, 500ms);
  EXPECT_EQ(sock->timeout, 500ms);  // resolved: min(interval, 1s)
  EXPECT_EQ(sock->rise, 2u);        // polled default
  EXPECT_EQ(sock->fall, 2u);

  const CheckSpec* proc = find_check(c, "haproxy-proc");
  ASSERT_NE(proc, nullptr);
  EXPECT_EQ(proc->type, CheckType::HaproxyProcess);
  EXPECT_EQ(proc->pidfile, "/run/haproxy.pid");
  EXPECT_TRUE(proc->event_driven());
  EXPECT_EQ(proc->rise, 1u);  // event-driven default
  EXPECT_EQ(proc->fall, 1u);
  EXPECT_EQ(proc->process_name, "haproxy");  // default: the PID must be HAProxy's
  EXPECT_EQ(proc->reload_grace, 200ms);

  const CheckSpec* uplink = find_check(c, "uplink");
  ASSERT_NE(uplink, nullptr);
  EXPECT_EQ(uplink->type, CheckType::Interface);
  EXPECT_EQ(uplink->interface, "eth1");  // not resolved: eth1 need not exist here
  EXPECT_EQ(uplink->rise, 1u);
  EXPECT_EQ(uplink->fall, 1u);

  const CheckSpec* maint = find_check(c, "maint");
  ASSERT_NE(maint, nullptr);
  EXPECT_EQ(maint->type, CheckType::File);
  EXPECT_EQ(maint->path, "/etc/bfd-beacon/maintenance");
  EXPECT_TRUE(maint->event_driven());

  const CheckSpec* custom = find_check(c, "custom");
  ASSERT_NE(custom, nullptr);
  EXPECT_EQ(custom->type, CheckType::Exec);
  EXPECT_EQ(custom->command, (std::vector<std::string>{"/usr/local/bin/my-check", "--quick"}));
  EXPECT_EQ(custom->interval, 1s);
  EXPECT_EQ(custom->timeout, 500ms);

  ASSERT_EQ(c.groups.size(), 1u);
  const GroupSpec& g = c.groups[0];
  EXPECT_EQ(g.name, "web");
  EXPECT_EQ(g.checks, (std::vector<std::string>{"haproxy", "haproxy-proc", "uplink", "maint"}));
  EXPECT_EQ(g.unhealthy_signal, core::Hold::Down);
  EXPECT_EQ(g.maintenance_signal, core::Hold::Down);
  EXPECT_EQ(g.diag, 5);
  EXPECT_GT(g.line, 0);
}

// ---------------------------------------------------------------- good files

TEST(HealthConfig, IssueExampleLoads) {
  Config c = load_ok(kIssueExample);
  expect_issue_checks(c);
  // No [health] table: defaults.
  EXPECT_EQ(c.health.failsafe_timeout, 1s);
  EXPECT_EQ(c.health.heartbeat_interval, 100ms);
}

TEST(HealthConfig, ExampleFileHasEveryCheckType) {
  LoadResult r = load_file(std::string(BEACON_SOURCE_DIR) + "/deploy/examples/beacon.toml");
  ASSERT_TRUE(r.errors.empty()) << dump(r);
  ASSERT_TRUE(r.config);
  const Config& c = *r.config;
  expect_issue_checks(c);
  const CheckSpec* sock = find_check(c, "haproxy-stats");
  ASSERT_NE(sock, nullptr);
  EXPECT_EQ(sock->fast_interval, 100ms);
  EXPECT_EQ(c.health.failsafe_timeout, 1s);
  EXPECT_EQ(c.health.heartbeat_interval, 100ms);
}

TEST(HealthConfig, NoHealthSectionsMeansNoChecks) {
  Config c = load_ok("[[session]]\npeer = \"198.18.0.1\"\ngroup = \"web\"\n");
  EXPECT_TRUE(c.checks.empty());
  EXPECT_TRUE(c.groups.empty());
  EXPECT_EQ(c.health.failsafe_timeout, 1s);
  EXPECT_EQ(c.health.heartbeat_interval, 100ms);
}

TEST(HealthConfig, PolledDefaultsResolved) {
  Config c = load_ok(R"([[check]]
name = "slow"
type = "exec"
command = ["true"]
interval = "3s"

[[check]]
name = "plain"
type = "haproxy-http"
url = "https://lb.example:8405/health"
)");
  const CheckSpec* slow = find_check(c, "slow");
  ASSERT_NE(slow, nullptr);
  EXPECT_EQ(slow->command, std::vector<std::string>{"true"});  // plain name: looked up in PATH
  EXPECT_EQ(slow->interval, 3s);
  EXPECT_EQ(slow->fast_interval, 3s);
  EXPECT_EQ(slow->timeout, 1s);  // min(interval, 1s)
  EXPECT_EQ(slow->rise, 2u);
  EXPECT_EQ(slow->fall, 2u);

  const CheckSpec* plain = find_check(c, "plain");
  ASSERT_NE(plain, nullptr);
  EXPECT_EQ(plain->url, "https://lb.example:8405/health");
  EXPECT_EQ(plain->expect_status, 200);
  EXPECT_EQ(plain->interval, 1s);
  EXPECT_EQ(plain->fast_interval, 1s);
  EXPECT_EQ(plain->timeout, 1s);
}

TEST(HealthConfig, ExplicitValuesOverrideDefaults) {
  Config c = load_ok(R"([[check]]
name = "stats"
type = "haproxy-socket"
socket = "/run/haproxy/admin.sock"
backend = "be_web:v2"
min_servers_up = 0
interval = "2s"
fast_interval = "50ms"
timeout = "2s"
rise = 1000
fall = 1

[[check]]
name = "link"
type = "interface"
interface = "bond0.100"
rise = 5
fall = 3

[[group]]
name = "g"
checks = ["stats", "link"]
unhealthy_signal = "admin-down"
maintenance_signal = "admin-down"
diag = 0

[health]
failsafe_timeout = "250ms"
heartbeat_interval = "20ms"
)");
  const CheckSpec* stats = find_check(c, "stats");
  ASSERT_NE(stats, nullptr);
  EXPECT_EQ(stats->backend, "be_web:v2");
  EXPECT_EQ(stats->min_servers_up, 0u);
  EXPECT_EQ(stats->fast_interval, 50ms);
  EXPECT_EQ(stats->timeout, 2s);  // timeout == interval is allowed
  EXPECT_EQ(stats->rise, 1000u);
  EXPECT_EQ(stats->fall, 1u);
  const CheckSpec* link = find_check(c, "link");
  ASSERT_NE(link, nullptr);
  EXPECT_EQ(link->rise, 5u);  // explicit rise/fall is valid on event-driven checks
  EXPECT_EQ(link->fall, 3u);
  ASSERT_EQ(c.groups.size(), 1u);
  EXPECT_EQ(c.groups[0].unhealthy_signal, core::Hold::AdminDown);
  EXPECT_EQ(c.groups[0].maintenance_signal, core::Hold::AdminDown);
  EXPECT_EQ(c.groups[0].diag, 0);
  EXPECT_EQ(c.health.failsafe_timeout, 250ms);
  EXPECT_EQ(c.health.heartbeat_interval, 20ms);
}

TEST(HealthConfig, ProcessCheckReloadGraceAndName) {
  Config c = load_ok(R"([[check]]
name = "p"
type = "haproxy-process"
pidfile = "/run/haproxy.pid"
reload_grace = "1s"
process_name = "haproxy-wrapper"

[[check]]
name = "any"
type = "haproxy-process"
pidfile = "/run/other.pid"
process_name = ""

[[group]]
name = "g"
checks = ["p", "any"]
)");
  const CheckSpec* p = find_check(c, "p");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->reload_grace, 1s);
  EXPECT_EQ(p->process_name, "haproxy-wrapper");
  const CheckSpec* any = find_check(c, "any");
  ASSERT_NE(any, nullptr);
  EXPECT_EQ(any->process_name, "");  // accept any process
  EXPECT_EQ(any->reload_grace, 200ms);
}

TEST(HealthConfig, GroupBeforeCheckInFileIsFine) {
  Config c = load_ok(R"([[group]]
name = "web"
checks = ["maint"]

[[check]]
name = "maint"
type = "file"
path = "/m"
)");
  ASSERT_EQ(c.groups.size(), 1u);
  EXPECT_EQ(c.groups[0].checks, std::vector<std::string>{"maint"});
}

TEST(HealthConfig, GroupsAndSessionsNeedNotMatch) {
  // A [[group]] nobody uses, and sessions/accept rules whose group has no
  // [[group]] (not health-managed): both allowed. Two groups may share a check.
  Config c = load_ok(R"([[check]]
name = "maint"
type = "file"
path = "/m"

[[group]]
name = "unused"
checks = ["maint"]

[[group]]
name = "also-unused"
checks = ["maint"]

[[session]]
peer = "198.18.0.1"
group = "web"

[[accept]]
prefix = "198.18.0.0/15"
group = "other"
)");
  EXPECT_EQ(c.groups.size(), 2u);
  EXPECT_EQ(c.sessions.size(), 1u);
}

TEST(HealthConfig, UnusedCheckIsAllowed) {
  Config c = load_ok("[[check]]\nname = \"maint\"\ntype = \"file\"\npath = \"/m\"\n");
  ASSERT_EQ(c.checks.size(), 1u);
  EXPECT_TRUE(c.groups.empty());
}

// ---------------------------------------------------------------- bad files

class BadHealthConfig : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadHealthConfig, PointsAtLineAndColumn) {
  test::expect_error_at(GetParam());
}

// Four lines: a valid file check named "maint" for the group cases.
#define MAINT "[[check]]\nname = \"maint\"\ntype = \"file\"\npath = \"/m\"\n"
// Three lines: the head of a check of a given type.
#define CHECK(type) "[[check]]\nname = \"c\"\ntype = \"" type "\"\n"

const BadCase kBadCases[] = {
    // Layout.
    {"CheckNotArray", "[check]\nname = \"x\"\n", 1, 2, "write [[check]]"},
    {"GroupNotArray", "[group]\nname = \"x\"\n", 1, 2, "write [[group]]"},
    {"HealthNotTable", "health = 1\n", 1, 10, "expected a table"},
    {"CheckElementNotTable", "check = [1]\n", 1, 10, "expected a table ([[check]])"},
    {"UnknownSectionHint", "[[chek]]\n", 1, 3, "did you mean \"check\""},
    // name / type.
    {"UnknownType", "[[check]]\nname = \"a\"\ntype = \"haproxy-tcp\"\n", 3, 8,
     "unknown check type \"haproxy-tcp\"; valid types: haproxy-http, haproxy-socket, "
     "haproxy-process, interface, file, exec"},
    {"UnknownTypeHint", "[[check]]\nname = \"a\"\ntype = \"interfaces\"\n", 3, 8,
     "did you mean \"interface\""},
    {"TypeNotString", "[[check]]\nname = \"a\"\ntype = 1\n", 3, 8, "check.type: expected a string"},
    {"MissingType", "[[check]]\nname = \"a\"\n", 1, 1, "[[check]] \"a\" needs a type"},
    {"MissingName", "[[check]]\ntype = \"file\"\npath = \"/m\"\n", 1, 1, "[[check]] needs a name"},
    {"BadCheckName", "[[check]]\nname = \"a b\"\ntype = \"file\"\npath = \"/m\"\n", 2, 8,
     "not a valid check name"},
    {"DuplicateCheckName", MAINT "\n" MAINT, 7, 8,
     "duplicate check name \"maint\": already defined at line 1"},
    {"UnknownCheckKeyHint", CHECK("exec") "command = [\"true\"]\nintervall = \"1s\"\n", 5, 1,
     "unknown key \"intervall\" in [[check]]; did you mean \"interval\"?"},
    // Keys of another type.
    {"UrlOnFileCheck", CHECK("file") "path = \"/m\"\nurl = \"http://x\"\n", 5, 1,
     "key url is not valid for check type file"},
    {"IntervalOnEventDriven", CHECK("interface") "interface = \"eth1\"\ninterval = \"1s\"\n", 5, 1,
     "key interval is not valid for check type interface"},
    {"TimeoutOnProcess", CHECK("haproxy-process") "pidfile = \"/p\"\ntimeout = \"1s\"\n", 5, 1,
     "key timeout is not valid for check type haproxy-process"},
    {"BackendOnHttp", CHECK("haproxy-http") "url = \"http://x\"\nbackend = \"web\"\n", 5, 1,
     "key backend is not valid for check type haproxy-http"},
    {"ReloadGraceOnSocket", CHECK("haproxy-socket") "socket = \"/s\"\nreload_grace = \"100ms\"\n",
     5, 1, "key reload_grace is not valid for check type haproxy-socket"},
    {"ReloadGraceZero", CHECK("haproxy-process") "pidfile = \"/p\"\nreload_grace = \"0ms\"\n", 5,
     16, "check.reload_grace: must be greater than 0: omit it for the default 200ms"},
    {"ReloadGraceTooLong", CHECK("haproxy-process") "pidfile = \"/p\"\nreload_grace = \"11s\"\n", 5,
     16, "check.reload_grace: \"11s\" is out of range 1ms..10s"},
    {"ReloadGraceNoUnit", CHECK("haproxy-process") "pidfile = \"/p\"\nreload_grace = \"200\"\n", 5,
     16, "check.reload_grace: invalid duration \"200\""},
    {"ProcessNameWithSlash",
     CHECK("haproxy-process") "pidfile = \"/p\"\nprocess_name = \"/usr/sbin/haproxy\"\n", 5, 16,
     "check.process_name: \"/usr/sbin/haproxy\" must be a program name"},
    {"ProcessNameNotString", CHECK("haproxy-process") "pidfile = \"/p\"\nprocess_name = 1\n", 5, 16,
     "check.process_name"},
    // Required keys, at the [[check]] header.
    {"MissingUrl", CHECK("haproxy-http"), 1, 1, "[[check]] \"c\" of type haproxy-http needs url"},
    {"MissingSocket", CHECK("haproxy-socket"), 1, 1, "of type haproxy-socket needs socket"},
    {"MissingPidfile", CHECK("haproxy-process"), 1, 1, "of type haproxy-process needs pidfile"},
    {"MissingInterface", CHECK("interface"), 1, 1, "of type interface needs interface"},
    {"MissingPath", CHECK("file"), 1, 1, "of type file needs path"},
    {"MissingCommand", CHECK("exec"), 1, 1, "of type exec needs command"},
    // haproxy-http
    {"UrlBadScheme", CHECK("haproxy-http") "url = \"ftp://x/y\"\n", 4, 7,
     "must start with http:// or https://"},
    {"UrlNoHost", CHECK("haproxy-http") "url = \"http:///health\"\n", 4, 7, "has no host"},
    {"UrlWithSpace", CHECK("haproxy-http") "url = \"http://x/a b\"\n", 4, 7, "spaces"},
    {"ExpectStatusTooBig", CHECK("haproxy-http") "url = \"http://x\"\nexpect_status = 600\n", 5, 17,
     "out of range 100..599"},
    {"ExpectStatusTooSmall", CHECK("haproxy-http") "url = \"http://x\"\nexpect_status = 99\n", 5,
     17, "out of range 100..599"},
    // haproxy-socket
    {"SocketRelative", CHECK("haproxy-socket") "socket = \"admin.sock\"\n", 4, 10,
     "must be an absolute path"},
    {"SocketTooLong",
     CHECK(
         "haproxy-socket") "socket = "
                           "\"/run/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                           "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"\n",
     4, 10, "the limit of a UNIX socket address"},
    {"MinServersWithoutBackend", CHECK("haproxy-socket") "socket = \"/s\"\nmin_servers_up = 2\n", 5,
     18, "only meaningful with backend"},
    {"MinServersNegative",
     CHECK("haproxy-socket") "socket = \"/s\"\nbackend = \"web\"\nmin_servers_up = -1\n", 6, 18,
     "out of range 0..1000000"},
    {"BadBackendName", CHECK("haproxy-socket") "socket = \"/s\"\nbackend = \"a b\"\n", 5, 11,
     "not a valid HAProxy backend name"},
    // haproxy-process / file / interface
    {"PidfileRelative", CHECK("haproxy-process") "pidfile = \"haproxy.pid\"\n", 4, 11,
     "must be an absolute path"},
    {"PathIsDirectory", CHECK("file") "path = \"/etc/bfd-beacon/\"\n", 4, 8,
     "must name a file, not a directory"},
    {"PathEmpty", CHECK("file") "path = \"\"\n", 4, 8, "must be an absolute path"},
    {"BadInterfaceName", CHECK("interface") "interface = \"a/b\"\n", 4, 13,
     "not a valid interface name"},
    {"InterfaceTooLong", CHECK("interface") "interface = \"abcdefghijklmnop\"\n", 4, 13,
     "not a valid interface name"},
    // exec
    {"CommandNotArray", CHECK("exec") "command = \"/bin/true\"\n", 4, 11,
     "expected an array of strings"},
    {"CommandEmpty", CHECK("exec") "command = []\n", 4, 11, "the array is empty"},
    {"CommandRelative", CHECK("exec") "command = [\"./check\"]\n", 4, 12,
     "check.command[0]: \"./check\" must be an absolute path or a plain program name"},
    {"CommandEmptyProgram", CHECK("exec") "command = [\"\"]\n", 4, 12,
     "must be an absolute path or a plain program name"},
    {"CommandElementNotString", CHECK("exec") "command = [\"/bin/x\", 1]\n", 4, 22,
     "check.command[1]: expected a string, got an integer"},
    // Timing.
    {"TimeoutLongerThanInterval",
     CHECK("exec") "command = [\"true\"]\ninterval = \"100ms\"\ntimeout = \"200ms\"\n", 6, 11,
     "check.timeout: 200ms is longer than the interval (100ms)"},
    {"TimeoutLongerThanDefaultInterval", CHECK("exec") "command = [\"true\"]\ntimeout = \"2s\"\n",
     5, 11, "longer than the interval (1s, the default)"},
    {"FastIntervalLongerThanInterval",
     CHECK("exec") "command = [\"true\"]\ninterval = \"1s\"\nfast_interval = \"2s\"\n", 6, 17,
     "check.fast_interval: 2s is longer than the interval (1s)"},
    {"ZeroInterval", CHECK("exec") "command = [\"true\"]\ninterval = \"0ms\"\n", 5, 12,
     "check.interval: must be greater than 0"},
    {"ZeroTimeout", CHECK("exec") "command = [\"true\"]\ntimeout = \"0s\"\n", 5, 11,
     "check.timeout: must be greater than 0"},
    {"IntervalTooSmall", CHECK("exec") "command = [\"true\"]\ninterval = \"500us\"\n", 5, 12,
     "out of range 1ms..3600s"},
    {"IntervalNoUnit", CHECK("exec") "command = [\"true\"]\ninterval = \"5\"\n", 5, 12,
     "missing unit"},
    {"IntervalAsInteger", CHECK("exec") "command = [\"true\"]\ninterval = 5\n", 5, 12,
     "expected a duration string"},
    {"RiseZero", CHECK("file") "path = \"/m\"\nrise = 0\n", 5, 8,
     "check.rise: 0 is out of range 1..1000"},
    {"FallTooBig", CHECK("file") "path = \"/m\"\nfall = 1001\n", 5, 8, "out of range 1..1000"},
    // [[group]]
    {"GroupUnknownCheck", MAINT "[[group]]\nname = \"web\"\nchecks = [\"maint\", \"haproxy\"]\n", 7,
     20, "group.checks: unknown check \"haproxy\""},
    {"GroupUnknownCheckHint", MAINT "[[group]]\nname = \"web\"\nchecks = [\"mant\"]\n", 7, 11,
     "unknown check \"mant\"; did you mean \"maint\"?"},
    {"GroupCheckListedTwice", MAINT "[[group]]\nname = \"web\"\nchecks = [\"maint\", \"maint\"]\n",
     7, 20, "check \"maint\" is listed twice"},
    {"GroupMissingChecks", MAINT "[[group]]\nname = \"web\"\n", 5, 1,
     "[[group]] \"web\" needs checks"},
    {"GroupEmptyChecks", MAINT "[[group]]\nname = \"web\"\nchecks = []\n", 7, 10,
     "must name at least one [[check]]"},
    {"GroupChecksNotArray", MAINT "[[group]]\nname = \"web\"\nchecks = \"maint\"\n", 7, 10,
     "expected an array of check names"},
    {"GroupCheckNotString", MAINT "[[group]]\nname = \"web\"\nchecks = [1]\n", 7, 11,
     "expected a check name (a string), got an integer"},
    {"GroupMissingName", MAINT "[[group]]\nchecks = [\"maint\"]\n", 5, 1, "[[group]] needs a name"},
    {"GroupBadName", MAINT "[[group]]\nname = \"w b\"\nchecks = [\"maint\"]\n", 6, 8,
     "not a valid group name"},
    {"GroupDuplicateName",
     MAINT "[[group]]\nname = \"web\"\nchecks = [\"maint\"]\n[[group]]\nname = \"web\"\nchecks = "
           "[\"maint\"]\n",
     9, 8, "duplicate group name \"web\": already defined at line 5"},
    {"GroupBadUnhealthySignal",
     MAINT "[[group]]\nname = \"web\"\nchecks = [\"maint\"]\nunhealthy_signal = \"admin_down\"\n",
     8, 20, "group.unhealthy_signal: \"admin_down\" is not one of \"down\", \"admin-down\""},
    {"GroupBadMaintenanceSignal",
     MAINT "[[group]]\nname = \"web\"\nchecks = [\"maint\"]\nmaintenance_signal = \"drain\"\n", 8,
     22, "group.maintenance_signal: \"drain\" is not one of"},
    {"GroupDiagTooBig", MAINT "[[group]]\nname = \"web\"\nchecks = [\"maint\"]\ndiag = 32\n", 8, 8,
     "group.diag: 32 is out of range 0..31"},
    {"GroupUnknownKey",
     MAINT "[[group]]\nname = \"web\"\nchecks = [\"maint\"]\nsignal = \"down\"\n", 8, 1,
     "unknown key \"signal\" in [[group]]"},
    // [[session]] overrides of the group's signals
    {"SessionBadUnhealthySignal",
     "[[session]]\npeer = \"198.18.0.1\"\nunhealthy_signal = \"admin_down\"\n", 3, 20,
     "session.unhealthy_signal: \"admin_down\" is not one of \"down\", \"admin-down\""},
    {"SessionBadMaintenanceSignal",
     "[[session]]\npeer = \"198.18.0.1\"\nmaintenance_signal = \"drain\"\n", 3, 22,
     "session.maintenance_signal: \"drain\" is not one of"},
    {"SessionSignalNotString", "[[session]]\npeer = \"198.18.0.1\"\nmaintenance_signal = 7\n", 3,
     22, "session.maintenance_signal"},
    {"SessionSignalTypo", "[[session]]\npeer = \"198.18.0.1\"\nmaintenance_signl = \"down\"\n", 3,
     1, "unknown key \"maintenance_signl\" in [[session]]"},
    // [health]
    {"HeartbeatNotShorterThanFailsafe", "[health]\nheartbeat_interval = \"1s\"\n", 2, 22,
     "heartbeat_interval (1s) must be shorter than failsafe_timeout (1s, the default)"},
    {"FailsafeBelowDefaultHeartbeat", "[health]\nfailsafe_timeout = \"50ms\"\n", 2, 20,
     "heartbeat_interval (100ms, the default) must be shorter than failsafe_timeout (50ms)"},
    {"FailsafeZero", "[health]\nfailsafe_timeout = \"0s\"\n", 2, 20,
     "health.failsafe_timeout: must be greater than 0"},
    {"HeartbeatBadDuration", "[health]\nheartbeat_interval = \"fast\"\n", 2, 22,
     "invalid duration"},
    {"HealthUnknownKey", "[health]\nfailsafe_timout = \"1s\"\n", 2, 1,
     "unknown key \"failsafe_timout\" in [health]; did you mean \"failsafe_timeout\"?"},
};

#undef MAINT
#undef CHECK

INSTANTIATE_TEST_SUITE_P(Table, BadHealthConfig, ::testing::ValuesIn(kBadCases),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(HealthConfigErrors, UnknownTypeFullMessage) {
  LoadResult r = load_string("[[check]]\nname = \"a\"\ntype = \"tcp\"\n", "/etc/b.toml");
  ASSERT_EQ(r.errors.size(), 1u) << dump(r);
  EXPECT_EQ(r.errors[0].format(),
            "/etc/b.toml:3:8: check.type: unknown check type \"tcp\"; valid types: haproxy-http, "
            "haproxy-socket, haproxy-process, interface, file, exec");
}

TEST(HealthConfigErrors, UnknownCheckInGroupFullMessage) {
  LoadResult r = load_string("[[group]]\nname = \"web\"\nchecks = [\"nope\"]\n", "/etc/b.toml");
  ASSERT_EQ(r.errors.size(), 1u) << dump(r);
  EXPECT_EQ(r.errors[0].format(),
            "/etc/b.toml:3:11: group.checks: unknown check \"nope\" (no [[check]] has this name)");
}

TEST(HealthConfigErrors, UnknownTypeDoesNotCascade) {
  // The type-specific keys of an unknown type are not judged, and a group
  // naming the check does not also report it as unknown.
  LoadResult r = load_string(R"([[check]]
name = "h"
type = "http"
url = "http://x"
[[group]]
name = "web"
checks = ["h"]
)",
                             "b.toml");
  ASSERT_EQ(r.errors.size(), 1u) << dump(r);
  EXPECT_EQ(r.errors[0].line, 3);
}

TEST(HealthConfigErrors, AllErrorsCollectedAndSorted) {
  LoadResult r = load_string(R"([health]
heartbeat_interval = "2s"

[[group]]
name = "web"
checks = ["haproxy", "gone"]
diag = 40

[[check]]
name = "haproxy"
type = "haproxy-http"
url = "gopher://x"
interval = "100ms"
timeout = "1s"

[[check]]
name = "maint"
type = "file"
path = "relative"
interval = "1s"
)",
                             "multi.toml");
  EXPECT_FALSE(r.config);
  ASSERT_EQ(r.errors.size(), 7u) << dump(r);
  const int expected[][2] = {{2, 22}, {6, 22}, {7, 8}, {12, 7}, {14, 11}, {19, 8}, {20, 1}};
  for (std::size_t i = 0; i < r.errors.size(); ++i) {
    EXPECT_EQ(r.errors[i].line, expected[i][0]) << dump(r);
    EXPECT_EQ(r.errors[i].column, expected[i][1]) << dump(r);
  }
}

// A [[session]] may override its group's signals; absent keys stay unset so
// the group's choice applies.
TEST(SessionSignalOverride, KeysAreOptionalAndOverrideTheGroup) {
  Config c = test::load_ok(R"(
[[session]]
peer = "198.18.0.1"
group = "web"
maintenance_signal = "admin-down"

[[session]]
peer = "198.18.0.2"
group = "web"

[[session]]
peer = "198.18.0.3"
group = "web"
unhealthy_signal = "admin-down"
maintenance_signal = "down"

[[check]]
name = "maint"
type = "file"
path = "/run/maint"

[[group]]
name = "web"
checks = ["maint"]
)");
  ASSERT_EQ(c.sessions.size(), 3u);
  EXPECT_FALSE(c.sessions[0].unhealthy_signal);
  EXPECT_EQ(c.sessions[0].maintenance_signal, core::Hold::AdminDown);
  EXPECT_FALSE(c.sessions[1].unhealthy_signal);
  EXPECT_FALSE(c.sessions[1].maintenance_signal);
  EXPECT_EQ(c.sessions[2].unhealthy_signal, core::Hold::AdminDown);
  EXPECT_EQ(c.sessions[2].maintenance_signal, core::Hold::Down);
}

TEST(HealthConfigErrors, GarbageNeverThrows) {
  const char* inputs[] = {
      "check = [{}]\n",
      "check = [{name = 1, type = []}]\n",
      "[[check]]\ntype = \"exec\"\ncommand = [[], {}, 1.5]\n",
      "[[group]]\nchecks = [[\"x\"]]\n",
      "[[check]]\nname = \"\\u0000\"\ntype = \"file\"\npath = \"/a\\u0000b\"\n",
      "group = [{name = \"x\", checks = [\"x\"], diag = -1}]\n",
      "[health]\nfailsafe_timeout = \"99999999999999s\"\n",
  };
  for (const char* in : inputs) {
    LoadResult r;
    ASSERT_NO_THROW(r = load_string(in, "g.toml")) << in;
    EXPECT_FALSE(r.config) << in;
    EXPECT_FALSE(r.errors.empty()) << in;
  }
}

}  // namespace
}  // namespace beacon::config
