// auth_type / auth_keys and the key file: lengths (AUTH-02), hex secrets,
// file permissions and owner, unknown types, inheritance from [bfd], and the
// reload diff of a rewritten key file. Secrets never appear in errors.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "beacon/config/diff.hpp"
#include "config_test_support.hpp"

namespace beacon::config {
namespace {

using core::wire::AuthType;
using test::dump;

class AuthConfig : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/beacon-auth-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& text, mode_t mode = 0600) {
    const std::string path = dir_ + "/" + name;
    {
      std::ofstream f(path, std::ios::trunc);
      f << text;
    }
    EXPECT_EQ(::chmod(path.c_str(), mode), 0);
    return path;
  }

  LoadResult load_session(const std::string& type, const std::string& path) {
    const std::string text = "[[session]]\npeer = \"198.18.0.1\"\nauth_type = \"" + type +
                             "\"\nauth_keys = \"" + path + "\"\n";
    return load_string(text, "test.toml");
  }

  std::string error_of(const std::string& type, const std::string& path) {
    LoadResult r = load_session(type, path);
    EXPECT_FALSE(r.config.has_value());
    return dump(r);
  }

  std::string dir_;
};

TEST_F(AuthConfig, SecretLengthLimitsPerType) {  // AUTH-02: lengths 0, 1, 16, 17, 20, 21
  struct Case {
    const char* type;
    std::size_t len;
    bool ok;
  };
  const Case cases[] = {
      {"simple", 1, true},
      {"simple", 16, true},
      {"simple", 17, false},
      {"keyed-md5", 1, true},
      {"keyed-md5", 16, true},
      {"keyed-md5", 17, false},
      {"meticulous-keyed-md5", 16, true},
      {"meticulous-keyed-md5", 17, false},
      {"keyed-sha1", 1, true},
      {"keyed-sha1", 16, true},
      {"keyed-sha1", 17, true},
      {"keyed-sha1", 20, true},
      {"keyed-sha1", 21, false},
      {"meticulous-keyed-sha1", 20, true},
      {"meticulous-keyed-sha1", 21, false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.type) + " " + std::to_string(c.len));
    const std::string secret(c.len, 'k');
    const std::string path = write("keys", "1 " + secret + "\n");
    LoadResult r = load_session(c.type, path);
    EXPECT_EQ(r.config.has_value(), c.ok) << dump(r);
    if (c.ok) {
      const auto& keys = r.config->sessions.at(0).auth.keys;
      ASSERT_TRUE(keys);
      EXPECT_EQ(keys->signing().len, c.len);
    } else {
      EXPECT_NE(dump(r).find("too long"), std::string::npos) << dump(r);
      EXPECT_EQ(dump(r).find(secret), std::string::npos);  // never the secret
    }
  }
  // Length 0: "0x" alone, and a line with an id only.
  EXPECT_NE(error_of("keyed-sha1", write("keys", "1 0x\n")).find("empty secret"),
            std::string::npos);
  EXPECT_NE(error_of("keyed-sha1", write("keys", "1\n")).find("KEY_ID SECRET"), std::string::npos);
}

TEST_F(AuthConfig, HexSecretsAndSeveralKeys) {  // AUTH-02 (hex SHOULD), AUTH-12
  const std::string path =
      write("keys", "# rotation: the first line signs\n\n5 0x00ff10AB\n6 plain-ascii\n  7 0X01\n");
  LoadResult r = load_session("keyed-md5", path);
  ASSERT_TRUE(r.config) << dump(r);
  const auto& keys = *r.config->sessions.at(0).auth.keys;
  EXPECT_EQ(keys.type(), AuthType::KeyedMd5);
  EXPECT_EQ(keys.size(), 3u);
  EXPECT_EQ(keys.signing().id, 5);
  ASSERT_EQ(keys.signing().len, 4);
  EXPECT_EQ(keys.signing().secret[0], 0x00);
  EXPECT_EQ(keys.signing().secret[1], 0xff);
  EXPECT_EQ(keys.signing().secret[2], 0x10);
  EXPECT_EQ(keys.signing().secret[3], 0xab);
  ASSERT_NE(keys.find(6), nullptr);
  EXPECT_EQ(keys.find(6)->len, 11);
  ASSERT_NE(keys.find(7), nullptr);
  EXPECT_EQ(keys.find(7)->len, 1);
  // 16 bytes of hex is the MD5 maximum; 17 is too long.
  EXPECT_TRUE(load_session("keyed-md5", write("k16", "1 0x" + std::string(32, 'a') + "\n")).config);
  EXPECT_FALSE(
      load_session("keyed-md5", write("k17", "1 0x" + std::string(34, 'a') + "\n")).config);
}

TEST_F(AuthConfig, BadKeyLinesNameTheLineNotTheSecret) {  // AUTH-02
  struct Case {
    const char* text;
    const char* message;
  };
  const Case cases[] = {
      {"1 s3cretA\n1 s3cretB\n", "line 2: key id 1 already defined at line 1"},
      {"256 s3cretA\n", "line 1: key id must be a number 0..255"},
      {"-1 s3cretA\n", "key id must be a number"},
      {"x s3cretA\n", "key id must be a number"},
      {"1 s3cretA s3cretB\n", "line 1: expected \"KEY_ID SECRET\""},
      {"1 0xabc\n", "odd number of digits"},
      {"1 0xzz\n", "not a hex digit"},
      {"# only comments\n\n", "no keys"},
      {"", "no keys"},
      {"1 caf\xc3\xa9\n", "not printable ASCII"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    const std::string path = write("keys", c.text);
    const std::string err = error_of("keyed-sha1", path);
    EXPECT_NE(err.find(c.message), std::string::npos) << err;
    EXPECT_NE(err.find(path), std::string::npos) << err;  // names the file
    EXPECT_EQ(err.find("s3cret"), std::string::npos);
  }
}

TEST_F(AuthConfig, RefusesKeyFilesOthersCanRead) {
  for (mode_t mode : {0640, 0604, 0660, 0644, 0620, 0610, 0601}) {
    SCOPED_TRACE(mode);
    const std::string err = error_of("keyed-sha1", write("keys", "1 secret\n", mode));
    EXPECT_NE(err.find("group or other permissions"), std::string::npos) << err;
    EXPECT_NE(err.find("chmod 600"), std::string::npos) << err;
  }
  EXPECT_TRUE(load_session("keyed-sha1", write("keys", "1 secret\n", 0400)).config);
  EXPECT_TRUE(load_session("keyed-sha1", write("keys", "1 secret\n", 0600)).config);
  // Missing file, a directory.
  EXPECT_NE(error_of("keyed-sha1", dir_ + "/absent").find("cannot open"), std::string::npos);
  ASSERT_EQ(::chmod(dir_.c_str(), 0700), 0);
  EXPECT_NE(error_of("keyed-sha1", dir_).find("not a regular file"), std::string::npos);
}

TEST_F(AuthConfig, RefusesKeyFilesOfAnotherOwner) {
  const std::string path = write("keys", "1 secret\n");
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to chown";
  ASSERT_EQ(::chown(path.c_str(), 12345, 12345), 0);
  const std::string err = error_of("keyed-sha1", path);
  EXPECT_NE(err.find("owned by uid 12345"), std::string::npos) << err;
  ASSERT_EQ(::chown(path.c_str(), 0, 0), 0);  // root-owned is fine
  EXPECT_TRUE(load_session("keyed-sha1", path).config);
}

TEST_F(AuthConfig, UnknownTypeAndMissingKeys) {
  const std::string path = write("keys", "1 secret\n");
  std::string err = error_of("keyed sha1", path);
  EXPECT_NE(err.find("auth_type"), std::string::npos) << err;
  err = error_of("hmac-sha256", path);
  EXPECT_NE(err.find("meticulous-keyed-sha1"), std::string::npos) << err;  // lists the choices
  LoadResult r =
      load_string("[[session]]\npeer = \"198.18.0.1\"\nauth_type = \"keyed-sha1\"\n", "test.toml");
  EXPECT_FALSE(r.config);
  EXPECT_NE(dump(r).find("needs auth_keys"), std::string::npos) << dump(r);
  r = load_string("[[session]]\npeer = \"198.18.0.1\"\nauth_keys = \"" + path + "\"\n",
                  "test.toml");
  EXPECT_FALSE(r.config);
  EXPECT_NE(dump(r).find("auth_type is \"none\""), std::string::npos) << dump(r);
  r = load_string(
      "[[session]]\npeer = \"198.18.0.1\"\nauth_type = \"keyed-sha1\"\nauth_keys = "
      "\"relative/keys\"\n",
      "test.toml");
  EXPECT_FALSE(r.config);
  EXPECT_NE(dump(r).find("absolute"), std::string::npos) << dump(r);
}

TEST_F(AuthConfig, BfdDefaultsAndOverrides) {
  const std::string a = write("a", "1 aaaa\n");
  const std::string b = write("b", "2 bbbb\n");
  const std::string text = "[bfd]\nauth_type = \"meticulous-keyed-sha1\"\nauth_keys = \"" + a +
                           "\"\n"
                           "[[session]]\npeer = \"198.18.0.1\"\n"
                           "[[session]]\npeer = \"198.18.0.2\"\nauth_type = \"none\"\n"
                           "[[session]]\npeer = \"198.18.0.3\"\nauth_keys = \"" +
                           b +
                           "\"\n"
                           "[[session]]\npeer = \"198.18.0.4\"\nauth_type = \"keyed-md5\"\n"
                           "[[accept]]\nprefix = \"198.19.0.0/16\"\n"
                           "[[accept]]\nprefix = \"198.20.0.0/16\"\nauth_type = \"simple\"\n";
  LoadResult r = load_string(text, "test.toml");
  ASSERT_TRUE(r.config) << dump(r);
  const auto& s = r.config->sessions;
  EXPECT_EQ(s[0].auth.type, AuthType::MeticulousKeyedSha1);
  EXPECT_EQ(s[0].auth.keys_path, a);
  EXPECT_EQ(s[1].auth.type, AuthType::None);
  EXPECT_FALSE(s[1].auth.keys);
  EXPECT_EQ(s[2].auth.type, AuthType::MeticulousKeyedSha1);
  EXPECT_EQ(s[2].auth.keys->signing().id, 2);
  EXPECT_EQ(s[3].auth.type, AuthType::KeyedMd5);
  EXPECT_EQ(s[3].auth.keys->signing().id, 1);
  EXPECT_EQ(r.config->accepts[0].auth.type, AuthType::MeticulousKeyedSha1);
  EXPECT_EQ(r.config->accepts[1].auth.type, AuthType::SimplePassword);
  // Sessions naming the same file and type share one key ring.
  EXPECT_EQ(s[0].auth.keys.get(), r.config->accepts[0].auth.keys.get());

  // [bfd] may name the key file alone; sessions pick the type.
  r = load_string("[bfd]\nauth_keys = \"" + a +
                      "\"\n[[session]]\npeer = \"198.18.0.1\"\nauth_type = \"keyed-sha1\"\n"
                      "[[session]]\npeer = \"198.18.0.2\"\n",
                  "test.toml");
  ASSERT_TRUE(r.config) << dump(r);
  EXPECT_EQ(r.config->sessions[0].auth.type, AuthType::KeyedSha1);
  EXPECT_EQ(r.config->sessions[1].auth.type, AuthType::None);
}

TEST_F(AuthConfig, ReloadSeesARewrittenKeyFile) {  // AUTH-12: rotation by reload
  const std::string path = write("keys", "1 old-key\n");
  auto load = [&] {
    LoadResult r = load_session("keyed-sha1", path);
    EXPECT_TRUE(r.config) << dump(r);
    return r.config.value_or(Config{});
  };
  const Config before = load();
  const Config same = load();
  EXPECT_TRUE(diff(before, same).sessions.changed.empty());
  write("keys", "1 old-key\n2 new-key\n");
  const Config added = load();
  ConfigDiff d = diff(before, added);
  ASSERT_EQ(d.sessions.changed.size(), 1u);
  EXPECT_TRUE(d.sessions.changed[0].auth);
  EXPECT_FALSE(d.sessions.changed[0].params);
  EXPECT_NE(d.summary().find("1 authentication changed"), std::string::npos) << d.summary();
  EXPECT_EQ(d.summary().find("new-key"), std::string::npos);
  write("keys", "2 new-key\n1 old-key\n");  // the signing key moves
  d = diff(added, load());
  ASSERT_EQ(d.sessions.changed.size(), 1u);
  EXPECT_TRUE(d.sessions.changed[0].auth);
}

}  // namespace
}  // namespace beacon::config
