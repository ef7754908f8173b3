// The jail's file system as ember-jailer builds it: needs root (mknod, chown).
#include "jailer/jail.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <filesystem>
#include <fstream>

#include "tests/support/ember_process.h"

namespace ember::jailer {
namespace {

namespace fs = std::filesystem;

class JailTest : public ::testing::Test {
  protected:
    void SetUp() override {
        exec = dir.write("ember", std::string(5000, 'x'));
        fs::permissions(exec, fs::perms(0755));
        o.id = "fn-7";
        o.exec_file = exec;
        o.uid = 1234;
        o.gid = 2345;
        o.chroot_base_dir = dir.path() + "/jails";
    }
    struct stat stat_of(const std::string& path) {
        struct stat st{};
        EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
        return st;
    }

    testing::TempDir dir;
    std::string exec;
    JailerOptions o;
};

TEST_F(JailTest, TheJailHoldsCopiesAndDeviceNodesOwnedByTheJailsIds) {
    ASSERT_TRUE(build_jail(o));
    const std::string root = dir.path() + "/jails/ember/fn-7/root";
    EXPECT_EQ(o.chroot_dir(), root);

    auto copy = stat_of(root + "/ember");
    EXPECT_TRUE(S_ISREG(copy.st_mode));
    EXPECT_NE(copy.st_ino, stat_of(exec).st_ino) << "a copy, not a link";
    EXPECT_EQ(copy.st_mode & 0777, 0755u);
    EXPECT_EQ(copy.st_size, 5000);

    struct Node {
        const char* path;
        unsigned major, minor;
    };
    for (const Node& n :
         {Node{"/dev/kvm", 10, 232}, Node{"/dev/net/tun", 10, 200}, Node{"/dev/urandom", 1, 9}}) {
        auto st = stat_of(root + n.path);
        EXPECT_TRUE(S_ISCHR(st.st_mode)) << n.path;
        EXPECT_EQ(major(st.st_rdev), n.major) << n.path;
        EXPECT_EQ(minor(st.st_rdev), n.minor) << n.path;
        EXPECT_EQ(st.st_mode & 0777, 0600u) << n.path;
        EXPECT_EQ(st.st_uid, 1234u) << n.path;
        EXPECT_EQ(st.st_gid, 2345u) << n.path;
    }
    struct stat host{};
    if (::stat("/dev/userfaultfd", &host) == 0)
        EXPECT_EQ(stat_of(root + "/dev/userfaultfd").st_rdev, host.st_rdev);
    else
        EXPECT_FALSE(fs::exists(root + "/dev/userfaultfd")) << "the host has none";
}

TEST_F(JailTest, EmberOwnsItsRootDevAndRunAndNobodyElseLooksIn) {
    ASSERT_TRUE(build_jail(o));
    for (const char* sub : {"", "/dev", "/dev/net", "/run"}) {
        auto st = stat_of(o.chroot_dir() + sub);
        EXPECT_TRUE(S_ISDIR(st.st_mode)) << sub;
        EXPECT_EQ(st.st_mode & 0777, 0700u) << sub;
        EXPECT_EQ(st.st_uid, 1234u) << sub;
        EXPECT_EQ(st.st_gid, 2345u) << sub;
    }
}

TEST_F(JailTest, ASymbolicLinkLeftInAnOldJailIsNotFollowed) {
    // What an earlier ember, which owned its root, could have left: /dev pointing at the host.
    const std::string elsewhere = dir.path() + "/elsewhere";
    fs::create_directories(elsewhere);
    fs::create_directories(o.chroot_dir());
    fs::create_directory_symlink(elsewhere, o.chroot_dir() + "/dev");
    auto r = build_jail(o);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("/dev: a symbolic link"), std::string::npos)
        << r.error().message;
    EXPECT_TRUE(fs::is_empty(elsewhere)) << "nothing made through the link";
    EXPECT_FALSE(fs::exists(o.chroot_dir() + "/ember")) << "what the call made is removed";
}

TEST_F(JailTest, AJailAlreadyInUseIsRefusedAndLeftAlone) {
    ASSERT_TRUE(build_jail(o));
    const std::string copy = o.chroot_dir() + "/ember";
    const auto before = stat_of(copy);
    // No pid file, or one naming no live process: a run that failed or ended left it.
    auto again = build_jail(o);
    ASSERT_FALSE(again);
    EXPECT_NE(again.error().message.find("holds ember from a run that failed or has ended"),
              std::string::npos)
        << again.error().message;
    // Its pid file names a live process (this one): that microVM may be running.
    std::ofstream(o.chroot_dir() + "/ember.pid") << ::getpid();
    auto running = build_jail(o);
    ASSERT_FALSE(running);
    EXPECT_NE(running.error().message.find("already holds ember: is microVM"), std::string::npos)
        << running.error().message;
    const auto after = stat_of(copy);
    EXPECT_EQ(after.st_ino, before.st_ino);
    EXPECT_EQ(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);
}

TEST_F(JailTest, AFailureLeavesNothingBehind) {
    JailerOptions missing = o;
    missing.exec_file = dir.path() + "/gone/ember";
    auto r = build_jail(missing);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("gone/ember"), std::string::npos) << r.error().message;
    EXPECT_FALSE(fs::exists(dir.path() + "/jails/ember/fn-7")) << "no half-made jail";

    // A root that was there before keeps what it had; only what the call added goes. Its /dev,
    // a file, fails the call after ember is copied in.
    fs::create_directories(o.chroot_dir());
    std::ofstream(o.chroot_dir() + "/config.json") << "{}";
    std::ofstream(o.chroot_dir() + "/dev") << "not a directory";
    ASSERT_FALSE(build_jail(o));
    EXPECT_TRUE(fs::exists(o.chroot_dir() + "/config.json"));
    EXPECT_TRUE(fs::is_regular_file(o.chroot_dir() + "/dev"));
    EXPECT_FALSE(fs::exists(o.chroot_dir() + "/ember"));
}

}  // namespace
}  // namespace ember::jailer
