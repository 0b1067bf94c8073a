// Terminal styling for bfdctl's human output: whether to colour, how to paint
// a word, and an aligned table whose column widths ignore colour escapes.
// Pure: the caller decides (from isatty and NO_COLOR) and passes a Style.
//
// Colour rule (https://no-color.org): colour only when the output stream is a
// terminal and NO_COLOR is unset or empty; any non-empty NO_COLOR disables
// it. --json output is never styled.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace beacon::ctl {

// BoldGreen / BoldRed: headlines ("IN ROTATION", "OUT OF ROTATION").
enum class Colour { None, Green, Red, Yellow, Cyan, Bold, Dim, BoldGreen, BoldRed };

struct Style {
  bool colour = false;

  // `tty`: the stream written to is a terminal; `no_color`: the value of
  // NO_COLOR, nullopt when unset.
  static Style detect(bool tty, const std::optional<std::string>& no_color);

  // `text` wrapped in the colour's SGR sequence and a reset; unchanged when
  // colour is off, `c` is None or `text` is empty.
  std::string paint(std::string_view text, Colour c) const;
};

// Colour conventions shared by every command, so a state looks the same in
// `sessions`, `groups`, `status` and `watch`.
// BFD state: Up green, Down red, AdminDown yellow, Init yellow.
Colour state_colour(std::string_view state);
// Health verdict / check state: healthy|pass green, unhealthy|fail red,
// maintenance yellow, unknown|waiting dim.
Colour verdict_colour(std::string_view verdict);
// A hold or signal: none -> None, down -> red, admin-down -> yellow.
Colour hold_colour(std::string_view hold);

// Columns a string takes on a terminal: SGR escapes (ESC [ ... letter) take
// none, each UTF-8 code point one.
std::size_t visible_width(std::string_view s);
// Cuts `s` to at most `cols` visible columns; escapes are kept, and a reset is
// appended when anything styled was cut off. Never splits a code point.
std::string truncate_visible(std::string_view s, std::size_t cols);

// Rows of cells laid out in aligned columns: two spaces between columns, the
// last column unpadded, one "\n" per row. Cells may contain colour escapes.
class Table {
 public:
  explicit Table(std::vector<std::string> header = {});
  void add(std::vector<std::string> row);
  std::size_t rows() const { return rows_.size(); }  // without the header
  bool has_header() const { return !header_.empty(); }
  // The header and the first `max_rows` rows (all by default), each line
  // without its "\n".
  std::vector<std::string> lines(std::size_t max_rows = static_cast<std::size_t>(-1)) const;
  std::string render() const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace beacon::ctl
