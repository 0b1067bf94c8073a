// The shared text helpers: each format is pinned because users and tests see it.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>

#include "beacon/util/address_text.hpp"
#include "beacon/util/duration_text.hpp"
#include "beacon/util/errno_text.hpp"
#include "beacon/util/file_read.hpp"
#include "beacon/util/ifindex.hpp"

namespace beacon::util {
namespace {

using std::chrono::microseconds;
namespace ip = boost::asio::ip;

TEST(ErrnoText, NamesTheError) {
  EXPECT_EQ(errno_text(ENOENT), "No such file or directory");
  EXPECT_EQ(errno_text(EACCES), "Permission denied");
}

struct DurationCase {
  std::int64_t us;
  const char* exact;
  const char* ms;
  const char* short_text;
};

TEST(DurationText, EachFormatKeepsItsSpelling) {
  const DurationCase cases[] = {
      {0, "0us", "0ms", "0ms"},
      {300, "300us", "300us", "0ms"},
      {1500, "1500us", "1500us", "1ms"},
      {50'000, "50ms", "50ms", "50ms"},
      {999'999, "999999us", "999999us", "999ms"},
      {1'000'000, "1s", "1000ms", "1.0s"},
      {1'250'000, "1250ms", "1250ms", "1.2s"},
      {1'500'000, "1500ms", "1500ms", "1.5s"},
      {90'000'000, "90s", "90000ms", "90.0s"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.us);
    EXPECT_EQ(duration_exact_text(microseconds(c.us)), c.exact);
    EXPECT_EQ(duration_ms_text(microseconds(c.us)), c.ms);
    EXPECT_EQ(duration_short_text(microseconds(c.us)), c.short_text);
  }
}

TEST(IntervalText, TablesDropTrailingZeros) {
  EXPECT_EQ(interval_text(0), "-");
  EXPECT_EQ(interval_text(-5), "-");
  EXPECT_EQ(interval_text(900), "900us");
  EXPECT_EQ(interval_text(50'000), "50ms");
  EXPECT_EQ(interval_text(1'500), "1.5ms");
  EXPECT_EQ(interval_text(1'234), "1.234ms");
  EXPECT_EQ(interval_text(1'000'000), "1s");
  EXPECT_EQ(interval_text(1'250'000), "1.25s");
  EXPECT_EQ(interval_text(2'000'500), "2.001s");
}

TEST(AddressText, LinkLocalCarriesItsScope) {
  const auto ll = ip::make_address("fe80::1");
  const auto v4 = ip::make_address("198.18.0.1");
  const auto gua = ip::make_address("2001:db8::1");
  EXPECT_TRUE(is_link_local(ll));
  EXPECT_FALSE(is_link_local(v4));
  EXPECT_FALSE(is_link_local(gua));

  const auto scoped = with_scope(ll, 7);
  EXPECT_EQ(scoped.to_v6().scope_id(), 7u);
  EXPECT_EQ(with_scope(scoped, 9).to_v6().scope_id(), 7u) << "an existing scope is kept";
  EXPECT_EQ(with_scope(ll, 0), ll) << "unknown index leaves it unscoped";
  EXPECT_EQ(with_scope(gua, 7), gua);
  EXPECT_EQ(with_scope(v4, 7), v4);

  EXPECT_EQ(without_scope(scoped), ll);
  EXPECT_EQ(without_scope(v4), v4);

  EXPECT_EQ(address_text(scoped, "veth0"), "fe80::1%veth0");
  EXPECT_EQ(address_text(scoped, ""), "fe80::1%7");
  EXPECT_EQ(address_text(ll, ""), "fe80::1");
  EXPECT_EQ(address_text(v4, "veth0"), "198.18.0.1");
  EXPECT_EQ(address_text(gua, "veth0"), "2001:db8::1");
}

TEST(InterfaceIndex, LoopbackAndNonsense) {
  const unsigned lo = interface_index("lo");
  ASSERT_NE(lo, 0u);
  EXPECT_EQ(interface_name(lo), "lo");
  EXPECT_EQ(interface_index(""), 0u);
  EXPECT_EQ(interface_index("a-name-longer-than-ifnamsiz"), 0u);
  EXPECT_EQ(interface_index("nosuchif0"), 0u);
  EXPECT_EQ(interface_name(0), "");
}

// The one small-file reader of the config loader and the state file.
TEST(SmallFile, ReadsWholeFilesAndNamesEachFailure) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("beacon-read-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string path = (dir / "f.txt").string();
  std::ofstream(path) << std::string(10'000, 'x');
  SmallFile f = read_small_file(path, 10'000);
  EXPECT_EQ(f.error, 0);
  EXPECT_EQ(f.content.size(), 10'000u);  // more than one read() buffer
  f = read_small_file(path, 9'999);
  EXPECT_TRUE(f.too_large);
  EXPECT_EQ(f.error, EFBIG);
  EXPECT_TRUE(f.content.empty());
  f = read_small_file((dir / "none").string(), 100);
  EXPECT_EQ(f.error, ENOENT);
  EXPECT_TRUE(f.at_open);
  f = read_small_file(dir.string(), 100);
  EXPECT_EQ(f.error, EISDIR);
  EXPECT_TRUE(f.at_open);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace beacon::util
