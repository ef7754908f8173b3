// The jailer's cgroup steps on directory trees that stand in for cgroup mounts (the files a
// kernel would provide are made by the test), for both hierarchy versions. The privileged tests
// join real cgroups.
#include "jailer/cgroups.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "tests/support/ember_process.h"

namespace ember::jailer {
namespace {

namespace fs = std::filesystem;

std::string read(const fs::path& p) {
    std::ifstream in(p);
    return std::string((std::istreambuf_iterator<char>(in)), {});
}

TEST(JailerCgroups, MountsAreReadFromProcMounts) {
    auto mounts = parse_cgroup_mounts(
        "tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0\n"
        "cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,nosuid,relatime,cpu,cpuacct 0 0\n"
        "cgroup /sys/fs/cgroup/systemd cgroup rw,relatime,xattr,name=systemd 0 0\n"
        "cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0\n"
        "proc /proc proc rw 0 0\n");
    ASSERT_EQ(mounts.size(), 3u);
    EXPECT_EQ(mounts[0].path, "/sys/fs/cgroup/cpu,cpuacct");
    EXPECT_EQ(mounts[0].version, 1);
    EXPECT_EQ(mounts[0].controllers, (std::vector<std::string>{"cpu", "cpuacct"}));
    EXPECT_EQ(mounts[1].controllers, (std::vector<std::string>{"xattr"}));
    EXPECT_EQ(mounts[2].version, 2);
}

class CgroupTree : public ::testing::Test {
  protected:
    JailerOptions options(int version, std::vector<CgroupValue> values) {
        JailerOptions o;
        o.id = "fn-3";
        o.parent_cgroup = "vms/ember";
        o.cgroup_version = version;
        o.cgroups = std::move(values);
        return o;
    }
    testing::TempDir dir;
    const pid_t pid = ::getpid();
};

TEST_F(CgroupTree, V1WritesEachValueInItsControllersHierarchyAndJoins) {
    const fs::path cpuset = dir.path() + "/cpuset", memory = dir.path() + "/memory";
    fs::create_directories(cpuset);
    fs::create_directories(memory);
    std::ofstream(cpuset / "cpuset.cpus") << "0-3\n";
    std::ofstream(cpuset / "cpuset.mems") << "0\n";
    std::vector<CgroupMount> mounts{{cpuset, 1, {"cpuset"}}, {memory, 1, {"memory"}}};
    auto r = join_cgroups(options(1, {{"cpuset.cpus", "1"}, {"memory.limit_in_bytes", "1000000"}}),
                          mounts, pid);
    ASSERT_TRUE(r) << r.error().message;
    const fs::path leaf = "vms/ember/fn-3";
    EXPECT_EQ(read(cpuset / leaf / "cpuset.cpus"), "1");
    EXPECT_EQ(read(cpuset / "vms/cpuset.mems"), "0") << "a new cpuset gets its parent's nodes";
    EXPECT_EQ(read(cpuset / leaf / "tasks"), std::to_string(pid));
    EXPECT_EQ(read(memory / leaf / "memory.limit_in_bytes"), "1000000");
    EXPECT_EQ(read(memory / leaf / "tasks"), std::to_string(pid));
}

TEST_F(CgroupTree, V1RefusesAControllerNoHierarchyHasAndMakesNothing) {
    const fs::path cpu = dir.path() + "/cpu";
    fs::create_directories(cpu);
    auto r = join_cgroups(options(1, {{"memory.limit_in_bytes", "1"}}), {{cpu, 1, {"cpu"}}}, pid);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("no cgroup v1 hierarchy has the 'memory' controller"),
              std::string::npos)
        << r.error().message;
    EXPECT_FALSE(fs::exists(cpu / "vms"));
}

TEST_F(CgroupTree, V2EnablesControllersOnTheWayDownWritesAndJoins) {
    const fs::path root = dir.path() + "/unified";
    fs::create_directories(root);
    std::ofstream(root / "cgroup.subtree_control") << "";
    auto r = join_cgroups(options(2, {{"memory.max", "134217728"}, {"cgroup.max.depth", "2"}}),
                          {{root, 2, {}}}, pid);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(read(root / "cgroup.subtree_control"), "+memory");
    EXPECT_EQ(read(root / "vms/cgroup.subtree_control"), "+memory");
    EXPECT_EQ(read(root / "vms/ember/cgroup.subtree_control"), "+memory");
    EXPECT_EQ(read(root / "vms/ember/fn-3/memory.max"), "134217728");
    EXPECT_EQ(read(root / "vms/ember/fn-3/cgroup.procs"), std::to_string(pid));
}

TEST_F(CgroupTree, V2WithoutValuesJoinsAnExistingParentOrNothing) {
    const fs::path root = dir.path() + "/unified";
    fs::create_directories(root);
    ASSERT_TRUE(join_cgroups(options(2, {}), {{root, 2, {}}}, pid));
    EXPECT_FALSE(fs::exists(root / "vms")) << "no parent cgroup: nothing is made";
    fs::create_directories(root / "vms/ember");
    ASSERT_TRUE(join_cgroups(options(2, {}), {{root, 2, {}}}, pid));
    EXPECT_EQ(read(root / "vms/ember/cgroup.procs"), std::to_string(pid));
    EXPECT_FALSE(fs::exists(root / "vms/ember/fn-3"));
}

}  // namespace
}  // namespace ember::jailer
