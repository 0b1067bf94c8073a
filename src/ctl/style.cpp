// See style.hpp.
#include "beacon/ctl/style.hpp"

#include <algorithm>

namespace beacon::ctl {
namespace {

constexpr std::string_view kReset = "\x1b[0m";

std::string_view sgr(Colour c) {
  switch (c) {
    case Colour::Green:
      return "\x1b[32m";
    case Colour::Red:
      return "\x1b[31m";
    case Colour::Yellow:
      return "\x1b[33m";
    case Colour::Cyan:
      return "\x1b[36m";
    case Colour::Bold:
      return "\x1b[1m";
    case Colour::Dim:
      return "\x1b[2m";
    case Colour::BoldGreen:
      return "\x1b[32;1m";
    case Colour::BoldRed:
      return "\x1b[31;1m";
    case Colour::None:
      break;
  }
  return {};
}

// Length of the escape sequence starting at s[i] (ESC [ params final), 0 if
// s[i] does not start one. A lone ESC counts as a one-byte escape.
std::size_t escape_length(std::string_view s, std::size_t i) {
  if (s[i] != '\x1b') return 0;
  if (i + 1 >= s.size() || s[i + 1] != '[') return 1;
  std::size_t j = i + 2;
  while (j < s.size() && !(s[j] >= 0x40 && s[j] <= 0x7e)) ++j;
  return std::min(j + 1, s.size()) - i;
}

bool continuation(char c) {
  return (static_cast<unsigned char>(c) & 0xC0) == 0x80;
}

}  // namespace

Style Style::detect(bool tty, const std::optional<std::string>& no_color) {
  return Style{tty && (!no_color || no_color->empty())};
}

std::string Style::paint(std::string_view text, Colour c) const {
  if (!colour || c == Colour::None || text.empty()) return std::string(text);
  std::string out(sgr(c));
  out += text;
  out += kReset;
  return out;
}

Colour state_colour(std::string_view state) {
  if (state == "Up") return Colour::Green;
  if (state == "Down") return Colour::Red;
  if (state == "AdminDown" || state == "Init") return Colour::Yellow;
  return Colour::None;
}

Colour verdict_colour(std::string_view v) {
  if (v == "healthy" || v == "pass") return Colour::Green;
  if (v == "unhealthy" || v == "fail") return Colour::Red;
  if (v == "maintenance") return Colour::Yellow;
  if (v == "unknown") return Colour::Dim;
  return Colour::None;
}

Colour hold_colour(std::string_view hold) {
  if (hold.rfind("admin-down", 0) == 0) return Colour::Yellow;
  if (hold.rfind("down", 0) == 0) return Colour::Red;
  return Colour::None;
}

std::size_t visible_width(std::string_view s) {
  std::size_t w = 0;
  for (std::size_t i = 0; i < s.size();) {
    if (std::size_t e = escape_length(s, i)) {
      i += e;
      continue;
    }
    if (!continuation(s[i])) ++w;
    ++i;
  }
  return w;
}

std::string truncate_visible(std::string_view s, std::size_t cols) {
  std::string out;
  std::size_t w = 0;
  bool styled = false;  // a style is in force (set and not reset since)
  for (std::size_t i = 0; i < s.size();) {
    if (std::size_t e = escape_length(s, i)) {
      const std::string_view esc = s.substr(i, e);
      out += esc;
      styled = esc != kReset && esc != "\x1b[m";
      i += e;
      continue;
    }
    std::size_t n = 1;
    while (i + n < s.size() && continuation(s[i + n])) ++n;
    if (w == cols) {
      if (styled) out += kReset;
      return out;
    }
    out += s.substr(i, n);
    ++w;
    i += n;
  }
  return out;
}

Table::Table(std::vector<std::string> header) : header_(std::move(header)) {}

void Table::add(std::vector<std::string> row) {
  rows_.push_back(std::move(row));
}

std::vector<std::string> Table::lines(std::size_t max_rows) const {
  std::vector<const std::vector<std::string>*> shown;
  if (!header_.empty()) shown.push_back(&header_);
  for (std::size_t i = 0; i < rows_.size() && i < max_rows; ++i) shown.push_back(&rows_[i]);
  // Widths over every row, shown or not, so a truncated table keeps the
  // layout of the full one (no jumping columns in `watch`).
  std::vector<std::size_t> width(header_.size());
  auto measure = [&width](const std::vector<std::string>& r) {
    width.resize(std::max(width.size(), r.size()));
    for (std::size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], visible_width(r[i]));
  };
  measure(header_);
  for (const auto& r : rows_) measure(r);
  std::vector<std::string> out;
  for (const auto* r : shown) {
    std::string line;
    for (std::size_t i = 0; i < r->size(); ++i) {
      line += (*r)[i];
      if (i + 1 < r->size()) line += std::string(width[i] - visible_width((*r)[i]) + 2, ' ');
    }
    out.push_back(std::move(line));
  }
  return out;
}

std::string Table::render() const {
  std::string out;
  for (const auto& l : lines()) out += l + "\n";
  return out;
}

}  // namespace beacon::ctl
