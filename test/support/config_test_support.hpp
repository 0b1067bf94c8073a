// Helpers shared by the config loader tests: load a good file, and check that a
// bad one gets an error at an exact line:column.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "beacon/config/config.hpp"

namespace beacon::test {

inline std::string dump(const config::LoadResult& r) {
  std::string out;
  for (const auto& e : r.errors) out += e.format() + "\n";
  return out;
}

// Loads `text`, expecting no error; returns the config (empty on failure).
inline config::Config load_ok(std::string_view text) {
  config::LoadResult r = config::load_string(text, "test.toml");
  EXPECT_TRUE(r.errors.empty()) << dump(r);
  EXPECT_TRUE(r.config.has_value());
  return r.config.value_or(config::Config{});
}

struct BadCase {
  const char* name;
  const char* text;
  int line;
  int column;
  const char* message;  // substring of an error at line:column
};

// Loads c.text as "bad.toml": no config, and one error at exactly
// c.line:c.column whose message contains c.message.
inline void expect_error_at(const BadCase& c) {
  config::LoadResult r;
  ASSERT_NO_THROW(r = config::load_string(c.text, "bad.toml"));
  EXPECT_FALSE(r.config.has_value());
  ASSERT_FALSE(r.errors.empty());
  bool found = false;
  for (const auto& e : r.errors) {
    EXPECT_EQ(e.file, "bad.toml");
    if (e.line == c.line && e.column == c.column &&
        e.message.find(c.message) != std::string::npos) {
      found = true;
    }
  }
  EXPECT_TRUE(found) << "wanted " << c.line << ":" << c.column << " \"" << c.message << "\", got:\n"
                     << dump(r);
}

}  // namespace beacon::test
