// The configuration file must be changeable only by root or the daemon's
// user: config::file_safety_problem.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "beacon/config/config.hpp"

namespace beacon::config {
namespace {

class FileSafety : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/beacon-file-safety-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    file_ = dir_ + "/beacon.toml";
    std::ofstream(file_) << "[daemon]\n";
    ASSERT_EQ(::chmod(file_.c_str(), 0644), 0);
    ASSERT_EQ(::chmod(dir_.c_str(), 0755), 0);
  }
  void TearDown() override {
    ::unlink(file_.c_str());
    ::rmdir(dir_.c_str());
  }
  std::string dir_, file_;
};

TEST_F(FileSafety, PrivateFileIsAccepted) {
  EXPECT_EQ(file_safety_problem(file_), "");
  ASSERT_EQ(::chmod(file_.c_str(), 0600), 0);
  EXPECT_EQ(file_safety_problem(file_), "");
}

TEST_F(FileSafety, GroupOrWorldWritableFileIsRefused) {
  for (mode_t m : {0664, 0646, 0666, 0620}) {
    ASSERT_EQ(::chmod(file_.c_str(), m), 0);
    const std::string why = file_safety_problem(file_);
    EXPECT_NE(why.find("is group- or world-writable (mode 0"), std::string::npos) << why;
    EXPECT_NE(why.find("chmod go-w " + file_), std::string::npos) << why;
  }
}

TEST_F(FileSafety, WritableDirectoryIsRefusedUnlessSticky) {
  ASSERT_EQ(::chmod(dir_.c_str(), 0777), 0);
  const std::string why = file_safety_problem(file_);
  EXPECT_NE(why.find("is in directory " + dir_ + ", which is group- or world-writable (mode 0777)"),
            std::string::npos)
      << why;
  ASSERT_EQ(::chmod(dir_.c_str(), 01777), 0);  // like /tmp: nobody replaces another's file
  EXPECT_EQ(file_safety_problem(file_), "");
}

TEST_F(FileSafety, ForeignOwnerIsRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to chown";
  ASSERT_EQ(::chown(file_.c_str(), 12345, 12345), 0);
  const std::string why = file_safety_problem(file_);
  EXPECT_NE(why.find("is owned by uid 12345, neither root nor the daemon's user"),
            std::string::npos)
      << why;
}

TEST_F(FileSafety, MissingFileSaysSo) {
  const std::string why = file_safety_problem(dir_ + "/nope.toml");
  EXPECT_EQ(why.rfind("cannot stat: ", 0), 0u) << why;
}

}  // namespace
}  // namespace beacon::config
