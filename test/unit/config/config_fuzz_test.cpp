// Seeded mutation fuzzing of the config loader: 20k mutants of the example
// config go through load_string, which must never throw or crash, and every
// config it accepts must satisfy the validation invariants (PKT-07, PKT-08,
// MH-05, MH-09, and the health checks and groups of issue 3). Deterministic:
// a failure prints the iteration to replay.
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <string>

#include "beacon/config/config.hpp"

namespace beacon::config {
namespace {

constexpr int kIterations = 20'000;
constexpr std::uint64_t kSeed = 0x5eedbeac0;

std::string read_example() {
  std::ifstream in(std::string(BEACON_SOURCE_DIR) + "/deploy/examples/beacon.toml");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Fragments that steer mutants toward interesting parser and validator paths.
constexpr std::array<std::string_view, 52> kTokens = {
    "=",
    "[",
    "]",
    "[[",
    "]]",
    "\"",
    "'",
    "\"\"\"",
    "{",
    "}",
    ",",
    "\n",
    "#",
    ".",
    "0",
    "-1",
    "255",
    "256",
    "1e9",
    "inf",
    "nan",
    "true",
    "\"0ms\"",
    "\"0.5us\"",
    "\"1m\"",
    "\"50\"",
    "\"4295s\"",
    "fe80::1",
    "%",
    "/",
    "/129",
    "::ffff:",
    "\\u0000",
    "\xff",
    "[session]",
    "[[accept]]",
    "multihop = true\n",
    "interface = \"veth0\"\n",
    "peer = \"198.18.0.1\"\n",
    "local = \"fd00::1\"\n",
    // Health sections (issue 3).
    "[[check]]\n",
    "[[group]]\n",
    "[health]\n",
    "type = \"file\"\n",
    "type = \"exec\"\n",
    "interval = \"10ms\"\n",
    "timeout = \"2s\"\n",
    "checks = [\"maint\", \"maint\"]\n",
    "command = []\n",
    "url = \"http://x\"\n",
    "heartbeat_interval = \"5s\"\n",
    "rise = 0\n",
};

std::string mutate(std::string text, std::mt19937_64& rng) {
  auto pick = [&](std::size_t n) {
    return n == 0 ? 0 : std::uniform_int_distribution<std::size_t>(0, n - 1)(rng);
  };
  const std::size_t rounds = 1 + pick(8);
  for (std::size_t i = 0; i < rounds; ++i) {
    const std::size_t pos = pick(text.size() + 1);
    switch (pick(7)) {
      case 0:  // flip a byte
        if (!text.empty()) text[pick(text.size())] = static_cast<char>(pick(256));
        break;
      case 1:  // delete a range
        if (pos < text.size()) text.erase(pos, 1 + pick(32));
        break;
      case 2:  // insert a token
        text.insert(pos, kTokens[pick(kTokens.size())]);
        break;
      case 3: {  // duplicate a range
        if (pos < text.size()) {
          const std::string chunk = text.substr(pos, 1 + pick(200));
          text.insert(pick(text.size() + 1), chunk);
        }
        break;
      }
      case 4:  // replace a digit with another
        if (!text.empty()) {
          const std::size_t at = text.find_first_of("0123456789", pick(text.size()));
          if (at != std::string::npos) text[at] = static_cast<char>('0' + pick(10));
        }
        break;
      case 5:  // truncate
        text.resize(pos);
        break;
      default:  // insert random bytes
        for (std::size_t n = 1 + pick(4); n > 0; --n) {
          text.insert(text.begin() + static_cast<std::ptrdiff_t>(pick(text.size() + 1)),
                      static_cast<char>(pick(256)));
        }
        break;
    }
  }
  return text;
}

// What every accepted config must satisfy, whatever the input was.
void check_invariants(const Config& c, int iteration) {
  auto check_params = [&](const core::SessionParams& p) {
    EXPECT_GT(p.desired_min_tx.count(), 0) << "iteration " << iteration;   // PKT-07
    EXPECT_GT(p.required_min_rx.count(), 0) << "iteration " << iteration;  // PKT-07
    EXPECT_LE(p.desired_min_tx.count(), 0xffffffffLL) << "iteration " << iteration;
    EXPECT_LE(p.required_min_rx.count(), 0xffffffffLL) << "iteration " << iteration;
    EXPECT_GE(p.detect_mult, 1) << "iteration " << iteration;  // PKT-08
  };
  check_params(c.bfd.params);
  EXPECT_GE(c.bfd.multihop_min_ttl, 1);
  for (const auto& s : c.sessions) {
    check_params(s.params);
    EXPECT_FALSE(s.peer.is_unspecified()) << "iteration " << iteration;
    if (s.multihop) {
      EXPECT_TRUE(s.local.has_value()) << "iteration " << iteration;  // MH-02
      EXPECT_TRUE(s.interface.empty()) << "iteration " << iteration;  // MH-09
      EXPECT_GE(s.min_ttl, 1);                                        // MH-05
    } else {
      EXPECT_EQ(s.min_ttl, 255) << "iteration " << iteration;
    }
    if (s.local) {
      EXPECT_EQ(s.local->is_v4(), s.peer.is_v4()) << "iteration " << iteration;
    }
  }
  for (const auto& a : c.accepts) {
    check_params(a.params);
    EXPECT_TRUE(a.params.passive);
    EXPECT_GE(a.max_sessions, 1u);
    EXPECT_LE(a.prefix_len, a.prefix.is_v4() ? 32u : 128u);
    EXPECT_TRUE(a.contains(a.prefix)) << "iteration " << iteration;
  }
  // Health (issue 3): defaults resolved, type-specific keys present, every
  // group names existing checks.
  std::set<std::string> names;
  static const std::set<std::string> kTypes = {"haproxy-http", "haproxy-socket", "haproxy-process",
                                               "interface",    "file",           "exec"};
  for (const auto& k : c.checks) {
    EXPECT_FALSE(k.name.empty()) << "iteration " << iteration;
    EXPECT_TRUE(names.insert(k.name).second) << "duplicate check, iteration " << iteration;
    EXPECT_EQ(kTypes.count(std::string(type_name(k.type))), 1u) << "iteration " << iteration;
    EXPECT_GE(k.rise, 1u) << "iteration " << iteration;
    EXPECT_LE(k.rise, 1000u) << "iteration " << iteration;
    EXPECT_GE(k.fall, 1u) << "iteration " << iteration;
    EXPECT_LE(k.fall, 1000u) << "iteration " << iteration;
    EXPECT_GT(k.interval.count(), 0) << "iteration " << iteration;
    EXPECT_GT(k.fast_interval.count(), 0) << "iteration " << iteration;
    EXPECT_GT(k.timeout.count(), 0) << "iteration " << iteration;
    EXPECT_LE(k.timeout, k.interval) << "iteration " << iteration;
    EXPECT_LE(k.fast_interval, k.interval) << "iteration " << iteration;
    if (k.type == CheckType::HaproxyHttp) {
      EXPECT_EQ(k.url.rfind("http", 0), 0u) << "iteration " << iteration;
      EXPECT_GE(k.expect_status, 100);
      EXPECT_LE(k.expect_status, 599);
    } else if (k.type == CheckType::HaproxySocket) {
      EXPECT_EQ(k.socket.rfind('/', 0), 0u) << "iteration " << iteration;
    } else if (k.type == CheckType::HaproxyProcess) {
      EXPECT_EQ(k.pidfile.rfind('/', 0), 0u) << "iteration " << iteration;
    } else if (k.type == CheckType::Interface) {
      EXPECT_FALSE(k.interface.empty()) << "iteration " << iteration;
      EXPECT_LE(k.interface.size(), 15u) << "iteration " << iteration;
    } else if (k.type == CheckType::File) {
      EXPECT_EQ(k.path.rfind('/', 0), 0u) << "iteration " << iteration;
    } else if (k.type == CheckType::Exec) {
      ASSERT_FALSE(k.command.empty()) << "iteration " << iteration;
      EXPECT_FALSE(k.command[0].empty()) << "iteration " << iteration;
    }
  }
  std::set<std::string> groups;
  for (const auto& g : c.groups) {
    EXPECT_TRUE(groups.insert(g.name).second) << "duplicate group, iteration " << iteration;
    EXPECT_FALSE(g.checks.empty()) << "iteration " << iteration;
    EXPECT_LE(g.diag, 31) << "iteration " << iteration;
    std::set<std::string> seen;
    for (const auto& name : g.checks) {
      EXPECT_EQ(names.count(name), 1u) << "unknown check " << name << ", iteration " << iteration;
      EXPECT_TRUE(seen.insert(name).second) << "iteration " << iteration;
    }
  }
  EXPECT_GT(c.health.heartbeat_interval.count(), 0) << "iteration " << iteration;
  EXPECT_LT(c.health.heartbeat_interval, c.health.failsafe_timeout) << "iteration " << iteration;
}

TEST(ConfigFuzz, MutatedExampleNeverThrowsOrCrashes) {
  const std::string example = read_example();
  ASSERT_FALSE(example.empty());
  ASSERT_TRUE(load_string(example, "example.toml").config);  // the seed itself is valid
  std::mt19937_64 rng(kSeed);
  int accepted = 0;
  for (int i = 0; i < kIterations; ++i) {
    const std::string input = mutate(example, rng);
    LoadResult r;
    try {
      r = load_string(input, "fuzz.toml");
    } catch (...) {
      FAIL() << "load_string threw on iteration " << i << ":\n" << input;
    }
    // Exactly one of: a config, or errors.
    ASSERT_NE(r.config.has_value(), !r.errors.empty()) << "iteration " << i;
    for (const auto& e : r.errors) {
      ASSERT_FALSE(e.message.empty()) << "iteration " << i;
      ASSERT_GE(e.line, 0);
      ASSERT_GE(e.column, 0);
      ASSERT_EQ(e.format().rfind("fuzz.toml", 0), 0u);
    }
    for (std::size_t k = 1; k < r.errors.size(); ++k) {  // sorted by position
      const auto& a = r.errors[k - 1];
      const auto& b = r.errors[k];
      ASSERT_TRUE(a.line < b.line || (a.line == b.line && a.column <= b.column))
          << "iteration " << i;
    }
    if (r.config) {
      ++accepted;
      check_invariants(*r.config, i);
    }
    if (HasFailure()) {
      ADD_FAILURE() << "first failing iteration " << i << ":\n" << input;
      return;
    }
  }
  // Sanity: the mutator keeps some inputs valid, so accepted configs are
  // actually checked above (not only rejections).
  EXPECT_GT(accepted, 0);
  RecordProperty("accepted", accepted);
}

}  // namespace
}  // namespace beacon::config
