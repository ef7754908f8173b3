// The jailer's last steps, each in a forked child (they change the process for good): the
// jail as /, the jail's ids, another network namespace.
#include "jailer/enter.h"

#include <grp.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>

#include "jailer/jail.h"
#include "tests/support/ember_process.h"
#include "tests/support/in_child.h"
#include "tests/support/netns.h"

namespace ember::jailer {
namespace {

using testing::in_child;

ino_t ns_inode(const std::string& path) {
    struct stat st{};
    return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

TEST(JailerEnter, TheJailBecomesRootAndTheHostIsGone) {
    testing::TempDir dir;
    auto exec = dir.write("ember", "#!/bin/false\n");
    std::filesystem::permissions(exec, std::filesystem::perms(0755));
    JailerOptions o;
    o.id = "fn-9";
    o.exec_file = exec;
    o.uid = 1234;
    o.gid = 2345;
    o.chroot_base_dir = dir.path() + "/jails";
    ASSERT_TRUE(build_jail(o));
    const std::string host_file = dir.path() + "/ember";
    EXPECT_EQ(in_child([&] {
                  if (!enter_root(o.chroot_dir())) return 1;
                  if (::access("/ember", X_OK) != 0) return 2;
                  if (::access("/dev/kvm", F_OK) != 0) return 3;
                  if (::access(host_file.c_str(), F_OK) == 0) return 4;  // the host's /tmp
                  if (::access("/proc", F_OK) == 0) return 5;
                  char cwd[64] = {};
                  if (::getcwd(cwd, sizeof cwd) == nullptr || std::string(cwd) != "/") return 6;
                  return 0;
              }),
              0);
    EXPECT_TRUE(std::filesystem::exists(host_file)) << "the host keeps its view";
}

TEST(JailerEnter, HostFilesAppearReadOnlyAtTheirPathsAndNothingElseOfTheirDirectories) {
    testing::TempDir dir;
    auto exec = dir.write("ember", "#!/bin/false\n");
    JailerOptions o;
    o.id = "fn-10";
    o.exec_file = exec;
    o.uid = 1234;
    o.gid = 2345;
    o.chroot_base_dir = dir.path() + "/jails";
    ASSERT_TRUE(build_jail(o));
    const std::string lib_dir = dir.path() + "/lib";
    std::filesystem::create_directories(lib_dir);
    const std::string lib = dir.write("lib/libx.so.1", "the library");
    dir.write("lib/liby.so.1", "not asked for");
    EXPECT_EQ(in_child([&] {
                  if (!enter_root(o.chroot_dir(), {lib})) return 1;
                  std::ifstream in(lib);
                  std::string text((std::istreambuf_iterator<char>(in)), {});
                  if (text != "the library") return 2;
                  if (::access(lib.c_str(), W_OK) == 0 || errno != EROFS) return 3;
                  if (::access((lib_dir + "/liby.so.1").c_str(), F_OK) == 0) return 4;
                  return 0;
              }),
              0);
    struct stat st{};
    ASSERT_EQ(::stat((o.chroot_dir() + lib).c_str(), &st), 0);
    EXPECT_EQ(st.st_size, 0) << "on the host, only an empty mount point stays in the jail";
}

TEST(JailerEnter, IdsAreDroppedForGood) {
    EXPECT_EQ(in_child([] {
                  if (!drop_to(1234, 2345)) return 1;
                  if (::getuid() != 1234 || ::geteuid() != 1234) return 2;
                  if (::getgid() != 2345 || ::getegid() != 2345) return 3;
                  if (::getgroups(0, nullptr) != 0) return 4;
                  if (::setuid(0) == 0) return 5;  // no way back to root
                  return 0;
              }),
              0);
}

TEST(JailerEnter, TheNetworkNamespaceIsJoined) {
    ember::testing::NetnsHolder owner;
    const std::string theirs = owner.path();
    const ino_t target = ns_inode(theirs);
    EXPECT_NE(target, ns_inode("/proc/self/ns/net"));
    EXPECT_EQ(in_child([&] {
                  if (!join_netns(theirs)) return 1;
                  return ns_inode("/proc/self/ns/net") == target ? 0 : 2;
              }),
              0);
    auto missing = join_netns("/nonexistent/ns");
    ASSERT_FALSE(missing);
    EXPECT_NE(missing.error().message.find("--netns /nonexistent/ns"), std::string::npos);
}

}  // namespace
}  // namespace ember::jailer
