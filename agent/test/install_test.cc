#include "miglet/agent/install.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace miglet {
namespace {

namespace fs = std::filesystem;

class InstallTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("install-test-" + std::to_string(getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    bundle_ = root_ / "bundle";
    for (const char* f : {"bin/miglet", "libexec/miglet", "lib/ld.so"}) Write(bundle_ / f, 0755);
    Write(bundle_ / "lib/libc.so.6", 0644);
    fs::create_symlink("libc.so.6", bundle_ / "lib/libc.so");
  }
  void TearDown() override { fs::remove_all(root_); }

  static void Write(const fs::path& p, mode_t mode) {
    fs::create_directories(p.parent_path());
    std::ofstream(p) << p.filename().string();
    chmod(p.c_str(), mode);
  }
  static mode_t Mode(const fs::path& p) {
    struct stat st {};
    lstat(p.c_str(), &st);
    return st.st_mode & 0777;
  }

  fs::path root_, bundle_;
};

TEST_F(InstallTest, CopiesTheWholeBundleWithItsModesAndLinks) {
  const fs::path to = root_ / "shared" / "miglet";
  ASSERT_TRUE(InstallBundle(bundle_, to).ok());
  EXPECT_EQ(Mode(to / "bin/miglet"), 0755u);
  EXPECT_EQ(Mode(to / "libexec/miglet"), 0755u);
  EXPECT_EQ(Mode(to / "lib/ld.so"), 0755u);
  EXPECT_EQ(Mode(to / "lib/libc.so.6"), 0644u);
  ASSERT_TRUE(fs::is_symlink(to / "lib/libc.so"));
  EXPECT_EQ(fs::read_symlink(to / "lib/libc.so"), "libc.so.6");
}

TEST_F(InstallTest, ReplacesWhatAnEarlierInstallLeft) {
  const fs::path to = root_ / "shared";
  Write(to / "libexec/miglet", 0755);
  std::ofstream(to / "libexec/miglet") << "an older agent";
  std::ofstream(bundle_ / "libexec/miglet") << "the new agent";
  ASSERT_TRUE(InstallBundle(bundle_, to).ok());
  std::ifstream in(to / "libexec/miglet");
  std::string content((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(content, "the new agent");
}

TEST_F(InstallTest, RefusesWithoutABundle) {
  auto st = InstallBundle("", (root_ / "x").string());
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("MIGLET_BUNDLE_DIR"), std::string::npos) << st.message();
  fs::remove(bundle_ / "lib/ld.so");
  st = InstallBundle(bundle_, (root_ / "x").string());
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("no lib/ld.so"), std::string::npos) << st.message();
  EXPECT_FALSE(fs::exists(root_ / "x"));
}

TEST_F(InstallTest, RefusesToCopyTheBundleOntoItself) {
  auto st = InstallBundle(bundle_, bundle_ / ".");
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
}

TEST_F(InstallTest, AnUnwritableTargetIsAClearError) {
  Write(root_ / "file", 0644);
  auto st = InstallBundle(bundle_, (root_ / "file" / "miglet").string());
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable) << st;
  EXPECT_NE(st.message().find("cannot create"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace miglet
