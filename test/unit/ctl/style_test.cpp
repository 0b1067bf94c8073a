// bfdctl styling: the NO_COLOR / terminal rule, painting, ANSI-aware widths
// and truncation, and tables that stay aligned with colour on.
#include "beacon/ctl/style.hpp"

#include <gtest/gtest.h>

namespace beacon::ctl {
namespace {

TEST(Style, ColourOnlyOnATerminalWithoutNoColor) {
  EXPECT_TRUE(Style::detect(true, std::nullopt).colour);
  // https://no-color.org: an empty NO_COLOR does not disable colour.
  EXPECT_TRUE(Style::detect(true, std::string()).colour);
  EXPECT_FALSE(Style::detect(true, std::string("1")).colour);
  EXPECT_FALSE(Style::detect(true, std::string("0")).colour);  // any non-empty value
  EXPECT_FALSE(Style::detect(false, std::nullopt).colour);
  EXPECT_FALSE(Style::detect(false, std::string()).colour);
}

TEST(Style, PaintWrapsInSgrAndResetOnlyWhenColourIsOn) {
  EXPECT_EQ(Style{true}.paint("Up", Colour::Green), "\x1b[32mUp\x1b[0m");
  EXPECT_EQ(Style{true}.paint("Down", Colour::Red), "\x1b[31mDown\x1b[0m");
  EXPECT_EQ(Style{false}.paint("Up", Colour::Green), "Up");
  EXPECT_EQ(Style{true}.paint("Up", Colour::None), "Up");
  EXPECT_EQ(Style{true}.paint("", Colour::Red), "");
}

TEST(Style, ConventionsForStatesVerdictsAndHolds) {
  EXPECT_EQ(state_colour("Up"), Colour::Green);
  EXPECT_EQ(state_colour("Down"), Colour::Red);
  EXPECT_EQ(state_colour("AdminDown"), Colour::Yellow);
  EXPECT_EQ(state_colour("Init"), Colour::Yellow);
  EXPECT_EQ(verdict_colour("healthy"), Colour::Green);
  EXPECT_EQ(verdict_colour("pass"), Colour::Green);
  EXPECT_EQ(verdict_colour("unhealthy"), Colour::Red);
  EXPECT_EQ(verdict_colour("fail"), Colour::Red);
  EXPECT_EQ(verdict_colour("maintenance"), Colour::Yellow);
  EXPECT_EQ(hold_colour("down"), Colour::Red);
  EXPECT_EQ(hold_colour("admin-down"), Colour::Yellow);
  EXPECT_EQ(hold_colour("none"), Colour::None);
  EXPECT_EQ(hold_colour("-"), Colour::None);
}

TEST(Style, VisibleWidthSkipsEscapesAndCountsCodePoints) {
  EXPECT_EQ(visible_width("Up"), 2u);
  EXPECT_EQ(visible_width("\x1b[32mUp\x1b[0m"), 2u);
  EXPECT_EQ(visible_width("\x1b[1m\x1b[31mx\x1b[0m"), 1u);
  EXPECT_EQ(visible_width("caf\xc3\xa9"), 4u);  // é is two bytes, one column
  EXPECT_EQ(visible_width(""), 0u);
}

TEST(Style, TruncateKeepsEscapesAndResetsWhenCut) {
  EXPECT_EQ(truncate_visible("abcdef", 3), "abc");
  EXPECT_EQ(truncate_visible("abc", 10), "abc");
  EXPECT_EQ(truncate_visible("\x1b[32mUpUp\x1b[0m", 2), "\x1b[32mUp\x1b[0m");
  EXPECT_EQ(visible_width(truncate_visible("\x1b[31mDown\x1b[0m rest", 3)), 3u);
  EXPECT_EQ(truncate_visible("caf\xc3\xa9!", 4), "caf\xc3\xa9");  // never splits a code point
  EXPECT_EQ(truncate_visible("abc", 0), "");
  // Nothing styled is left open: no extra reset.
  EXPECT_EQ(truncate_visible("\x1b[32mUp\x1b[0m rest", 4), "\x1b[32mUp\x1b[0m r");
}

TEST(Style, TableAlignsColouredCellsLikePlainOnes) {
  Table plain({"A", "STATE", "Z"});
  plain.add({"x", "Up", "1"});
  plain.add({"long", "Down", "2"});
  Table coloured({"A", "STATE", "Z"});
  const Style s{true};
  coloured.add({"x", s.paint("Up", Colour::Green), "1"});
  coloured.add({"long", s.paint("Down", Colour::Red), "2"});
  EXPECT_EQ(plain.render(), "A     STATE  Z\nx     Up     1\nlong  Down   2\n");
  auto a = plain.lines(), b = coloured.lines();
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(visible_width(b[i]), a[i].size()) << b[i];
    EXPECT_EQ(b[i].rfind('Z') != std::string::npos || b[i].back() == '1' || b[i].back() == '2',
              true);
  }
  // Limiting rows keeps the widths of the whole table.
  auto head = plain.lines(1);
  ASSERT_EQ(head.size(), 2u);
  EXPECT_EQ(head[1], "x     Up     1");
}

}  // namespace
}  // namespace beacon::ctl
