// The jailer's cgroup step on this host's real hierarchies: a child process joins a new cgroup
// with a value written, on each hierarchy version the host mounts (at least one must be there).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "jailer/cgroups.h"

namespace ember::jailer {
namespace {

namespace fs = std::filesystem;

std::string read(const fs::path& p) {
    std::ifstream in(p);
    std::string s((std::istreambuf_iterator<char>(in)), {});
    while (!s.empty() && s.back() == '\n') s.pop_back();
    return s;
}

class RealCgroups : public ::testing::Test {
  protected:
    void SetUp() override {
        mounts = parse_cgroup_mounts(read("/proc/mounts"));
        child = ::fork();
        if (child == 0) {
            ::pause();
            ::_exit(0);
        }
        ASSERT_GT(child, 0);
    }
    void TearDown() override {
        ::kill(child, SIGKILL);
        ::waitpid(child, nullptr, 0);
        for (auto it = made.rbegin(); it != made.rend(); ++it) ::rmdir(it->c_str());
    }
    JailerOptions options(int version, std::vector<CgroupValue> values) {
        JailerOptions o;
        o.id = "fn";
        o.parent_cgroup = "ember-jailer-test-" + std::to_string(::getpid());
        o.cgroup_version = version;
        o.cgroups = std::move(values);
        return o;
    }
    const CgroupMount* find(int version, const std::string& controller) const {
        for (const auto& m : mounts)
            if (m.version == version &&
                (version == 2 ||
                 std::count(m.controllers.begin(), m.controllers.end(), controller)))
                return &m;
        return nullptr;
    }
    std::vector<CgroupMount> mounts;
    pid_t child = -1;
    std::vector<fs::path> made;
};

TEST_F(RealCgroups, AChildJoinsANewCgroupOnEachHierarchyTheHostHas) {
    int versions = 0;
    if (const auto* pids = find(1, "pids")) {
        ++versions;
        auto o = options(1, {{"pids.max", "50"}});
        made = {fs::path(pids->path) / o.parent_cgroup,
                fs::path(pids->path) / o.parent_cgroup / "fn"};
        auto r = join_cgroups(o, mounts, child);
        ASSERT_TRUE(r) << r.error().message;
        EXPECT_EQ(read(made[1] / "pids.max"), "50");
        EXPECT_NE(read("/proc/" + std::to_string(child) + "/cgroup")
                      .find("pids:/" + o.parent_cgroup + "/fn"),
                  std::string::npos);
        ::kill(child, SIGKILL);
        ::waitpid(child, nullptr, 0);
        child = ::fork();
        if (child == 0) {
            ::pause();
            ::_exit(0);
        }
        for (auto it = made.rbegin(); it != made.rend(); ++it) ASSERT_EQ(::rmdir(it->c_str()), 0);
        made.clear();
    }
    if (const auto* unified = find(2, "")) {
        ++versions;
        auto o = options(2, {{"cgroup.max.depth", "2"}});
        made = {fs::path(unified->path) / o.parent_cgroup,
                fs::path(unified->path) / o.parent_cgroup / "fn"};
        auto r = join_cgroups(o, mounts, child);
        ASSERT_TRUE(r) << r.error().message;
        EXPECT_EQ(read(made[1] / "cgroup.max.depth"), "2");
        EXPECT_NE(read("/proc/" + std::to_string(child) + "/cgroup")
                      .find("0::/" + o.parent_cgroup + "/fn"),
                  std::string::npos)
            << read("/proc/" + std::to_string(child) + "/cgroup");
    }
    ASSERT_GT(versions, 0) << "this host mounts neither a cgroup v1 pids hierarchy nor cgroup v2";
    std::cout << "cgroup versions joined on this host: " << versions << "\n";
}

}  // namespace
}  // namespace ember::jailer
