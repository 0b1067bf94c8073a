// The check type registry (config::check_types()): one row per CheckType,
// names that round-trip, the loader's type errors unchanged, and the
// defaults of apply_check_defaults equal to the values the loader, the health
// manager and the polled probes each used before they shared the registry.
#include <gtest/gtest.h>

#include <iterator>
#include <set>
#include <stdexcept>
#include <string>

#include "beacon/config/config.hpp"
#include "config_test_support.hpp"

namespace beacon::config {
namespace {

using test::dump;
using test::load_ok;
using namespace std::chrono_literals;

constexpr CheckType kAll[] = {CheckType::HaproxyHttp,    CheckType::HaproxySocket,
                              CheckType::HaproxyProcess, CheckType::Interface,
                              CheckType::File,           CheckType::Exec};
static_assert(std::size(kAll) == kCheckTypeCount);

constexpr std::string_view kValidTypes =
    "haproxy-http, haproxy-socket, haproxy-process, interface, file, exec";

TEST(CheckRegistry, EveryTypeHasExactlyOneRow) {
  ASSERT_EQ(check_types().size(), kCheckTypeCount);
  for (CheckType t : kAll) {
    int rows = 0;
    for (const auto& row : check_types()) rows += row.type == t ? 1 : 0;
    EXPECT_EQ(rows, 1) << type_name(t);
    EXPECT_EQ(check_type_info(t).type, t) << type_name(t);
    EXPECT_NE(check_type_info(t).read, nullptr) << type_name(t);
    EXPECT_FALSE(check_type_info(t).keys.empty()) << type_name(t);
  }
  // No key belongs to two types: "not valid for check type X" must name the
  // one type a key would be valid for.
  std::set<std::string_view> keys;
  for (const auto& row : check_types()) {
    for (auto key : row.keys) EXPECT_TRUE(keys.insert(key).second) << key;
  }
}

TEST(CheckRegistry, NamesRoundTripThroughParse) {
  std::set<std::string_view> names;
  for (CheckType t : kAll) {
    EXPECT_TRUE(names.insert(type_name(t)).second) << type_name(t);
    EXPECT_EQ(parse_check_type(type_name(t)), t) << type_name(t);
  }
  // The spellings are the config (and bfdctl JSON) contract.
  EXPECT_EQ(parse_check_type("haproxy-http"), CheckType::HaproxyHttp);
  EXPECT_EQ(parse_check_type("haproxy-socket"), CheckType::HaproxySocket);
  EXPECT_EQ(parse_check_type("haproxy-process"), CheckType::HaproxyProcess);
  EXPECT_EQ(parse_check_type("interface"), CheckType::Interface);
  EXPECT_EQ(parse_check_type("file"), CheckType::File);
  EXPECT_EQ(parse_check_type("exec"), CheckType::Exec);
  // Exact match only.
  EXPECT_EQ(parse_check_type(""), std::nullopt);
  EXPECT_EQ(parse_check_type("tcp"), std::nullopt);
  EXPECT_EQ(parse_check_type("HAPROXY-HTTP"), std::nullopt);
  EXPECT_EQ(parse_check_type("exec "), std::nullopt);
  EXPECT_EQ(type_name(static_cast<CheckType>(200)), "unknown");
  EXPECT_THROW(check_type_info(static_cast<CheckType>(200)), std::invalid_argument);
}

TEST(CheckRegistry, EventDrivenIsNotPolled) {
  const std::set<CheckType> event = {CheckType::HaproxyProcess, CheckType::Interface,
                                     CheckType::File};
  for (CheckType t : kAll) {
    CheckSpec s;
    s.type = t;
    EXPECT_EQ(s.event_driven(), event.count(t) == 1) << type_name(t);
    EXPECT_EQ(check_type_info(t).polled, event.count(t) == 0) << type_name(t);
  }
}

// The loader's messages about the type key, in full, as they were before the
// registry (the list of valid types is the registry's order).
TEST(CheckRegistry, UnknownTypeErrorsUnchanged) {
  LoadResult r = load_string("[[check]]\nname = \"a\"\ntype = \"tcp\"\n", "/etc/b.toml");
  ASSERT_EQ(r.errors.size(), 1u) << dump(r);
  EXPECT_EQ(r.errors[0].format(),
            "/etc/b.toml:3:8: check.type: unknown check type \"tcp\"; "
            "valid types: " +
                std::string(kValidTypes));

  r = load_string("[[check]]\nname = \"a\"\ntype = \"interfaces\"\n", "/etc/b.toml");
  ASSERT_EQ(r.errors.size(), 1u) << dump(r);
  EXPECT_EQ(r.errors[0].format(),
            "/etc/b.toml:3:8: check.type: unknown check type "
            "\"interfaces\"; valid types: " +
                std::string(kValidTypes) + "; did you mean \"interface\"?");

  r = load_string("[[check]]\nname = \"a\"\ntype = 1\n", "/etc/b.toml");
  ASSERT_EQ(r.errors.size(), 1u) << dump(r);
  EXPECT_EQ(r.errors[0].format(), "/etc/b.toml:3:8: check.type: expected a string (one of " +
                                      std::string(kValidTypes) + "), got an integer");

  r = load_string("[[check]]\nname = \"a\"\n", "/etc/b.toml");
  ASSERT_EQ(r.errors.size(), 1u) << dump(r);
  EXPECT_EQ(r.errors[0].format(),
            "/etc/b.toml:1:1: [[check]] \"a\" needs a type, one of " + std::string(kValidTypes));
}

// The valid-keys list of each type comes from its row: common keys, the
// row's keys, then the poll keys for a polled type.
TEST(CheckRegistry, KeyOfAnotherTypeListsTheRowsKeys) {
  const auto rows = check_types();
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const CheckTypeInfo& row = rows[i];
    const std::string_view foreign = rows[(i + 1) % rows.size()].keys.front();
    const std::string text = "[[check]]\nname = \"c\"\ntype = \"" + std::string(row.name) + "\"\n" +
                             std::string(foreign) + " = 1\n";
    std::string valid = "name, type, rise, fall";
    for (auto key : row.keys) valid += ", " + std::string(key);
    if (row.polled) valid += ", interval, fast_interval, timeout";
    const std::string expected = "/etc/b.toml:4:1: check." + std::string(foreign) + ": key " +
                                 std::string(foreign) + " is not valid for check type " +
                                 std::string(row.name) + " (valid keys: " + valid + ")";
    LoadResult r = load_string(text, "/etc/b.toml");
    bool found = false;
    for (const auto& e : r.errors) found |= e.format() == expected;
    EXPECT_TRUE(found) << "expected " << expected << "\n" << dump(r);
  }
}

// The defaults before the registry: rise/fall 2/2 for polled types and 1/1
// for event-driven ones (loader and health manager), interval 1s (manager),
// fast_interval = interval (loader, manager), timeout min(interval, 1s)
// (loader, manager, polled probes).
struct OldDefaults {
  CheckType type;
  std::uint32_t rise, fall;
};
constexpr OldDefaults kOldDefaults[] = {
    {CheckType::HaproxyHttp, 2, 2},    {CheckType::HaproxySocket, 2, 2},
    {CheckType::HaproxyProcess, 1, 1}, {CheckType::Interface, 1, 1},
    {CheckType::File, 1, 1},           {CheckType::Exec, 2, 2},
};
static_assert(std::size(kOldDefaults) == kCheckTypeCount);

TEST(CheckRegistry, ApplyCheckDefaultsEqualsTheFormerHardCodedOnes) {
  for (const auto& d : kOldDefaults) {
    SCOPED_TRACE(std::string(type_name(d.type)));
    CheckSpec s;
    s.type = d.type;  // interval 1s (the struct default), the rest 0
    apply_check_defaults(s);
    EXPECT_EQ(s.rise, d.rise);
    EXPECT_EQ(s.fall, d.fall);
    EXPECT_EQ(s.interval, core::Duration(1s));
    EXPECT_EQ(s.fast_interval, core::Duration(1s));
    EXPECT_EQ(s.timeout, core::Duration(1s));

    CheckSpec fast;
    fast.type = d.type;
    fast.interval = 300ms;
    apply_check_defaults(fast);
    EXPECT_EQ(fast.fast_interval, core::Duration(300ms));
    EXPECT_EQ(fast.timeout, core::Duration(300ms));  // min(interval, 1s)

    CheckSpec slow;
    slow.type = d.type;
    slow.interval = 5s;
    apply_check_defaults(slow);
    EXPECT_EQ(slow.fast_interval, core::Duration(5s));
    EXPECT_EQ(slow.timeout, core::Duration(1s));  // min(interval, 1s)

    // interval 0 (only a hand-made spec): 1s, as the health manager had it.
    CheckSpec zero;
    zero.type = d.type;
    zero.interval = core::Duration{0};
    apply_check_defaults(zero);
    EXPECT_EQ(zero.interval, core::Duration(1s));
    EXPECT_EQ(zero.fast_interval, core::Duration(1s));
    EXPECT_EQ(zero.timeout, core::Duration(1s));
  }
}

TEST(CheckRegistry, ApplyCheckDefaultsKeepsGivenValues) {
  for (CheckType t : kAll) {
    CheckSpec s;
    s.type = t;
    s.interval = 500ms;
    s.fast_interval = 100ms;
    s.timeout = 2s;  // longer than interval: the loader rejects it, a hand-made spec keeps it
    s.rise = 3;
    s.fall = 7;
    const CheckSpec before = s;
    apply_check_defaults(s);
    EXPECT_EQ(s, before) << type_name(t);
    // Idempotent on a resolved spec as well.
    CheckSpec z;
    z.type = t;
    apply_check_defaults(z);
    const CheckSpec once = z;
    apply_check_defaults(z);
    EXPECT_EQ(z, once) << type_name(t);
  }
}

// What the loader resolves for absent keys is exactly apply_check_defaults.
TEST(CheckRegistry, LoaderResolvesDefaultsThroughApplyCheckDefaults) {
  const Config c = load_ok(R"([[check]]
name = "http"
type = "haproxy-http"
url = "http://127.0.0.1:8405/"
interval = "400ms"

[[check]]
name = "sock"
type = "haproxy-socket"
socket = "/run/haproxy/admin.sock"

[[check]]
name = "proc"
type = "haproxy-process"
pidfile = "/run/haproxy.pid"

[[check]]
name = "uplink"
type = "interface"
interface = "eth1"

[[check]]
name = "maint"
type = "file"
path = "/etc/bfd-beacon/maintenance"

[[check]]
name = "custom"
type = "exec"
command = ["/bin/true"]
interval = "3s"
)");
  ASSERT_EQ(c.checks.size(), kCheckTypeCount);
  std::set<CheckType> seen;
  for (const auto& loaded : c.checks) {
    SCOPED_TRACE(loaded.name);
    seen.insert(loaded.type);
    CheckSpec zeroed = loaded;
    zeroed.fast_interval = core::Duration{0};
    zeroed.timeout = core::Duration{0};
    zeroed.rise = 0;
    zeroed.fall = 0;
    apply_check_defaults(zeroed);
    EXPECT_EQ(zeroed, loaded);
  }
  EXPECT_EQ(seen.size(), kCheckTypeCount);
}

}  // namespace
}  // namespace beacon::config
