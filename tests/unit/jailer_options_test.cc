// ember-jailer's flags: Firecracker's, each refused with a message that names it.
#include "jailer/options.h"

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <vector>

#include "tests/support/ember_process.h"

namespace ember::jailer {
namespace {

Result<JailerOptions> parse(std::vector<std::string> args) {
    return parse_options(args);
}

std::vector<std::string> minimal() {
    return {"--id", "fn-1", "--exec-file", "/usr/bin/ember", "--uid", "1000", "--gid", "1000"};
}

std::vector<std::string> with(std::vector<std::string> extra) {
    auto args = minimal();
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
}

std::string error_of(const Result<JailerOptions>& r) {
    return r ? "(accepted)" : r.error().message;
}

TEST(JailerOptions, FirecrackersFlagsWithTheirDefaults) {
    auto o = parse(with({"--netns", "/var/run/netns/fn1", "--daemonize", "--new-pid-ns",
                         "--cgroup-version", "2", "--cgroup", "cpuset.cpus=0", "--cgroup",
                         "memory.max=134217728", "--resource-limit", "no-file=1024",
                         "--resource-limit", "fsize=250000000", "--", "--config-file", "vm.json"}));
    ASSERT_TRUE(o) << o.error().message;
    EXPECT_EQ(o->id, "fn-1");
    EXPECT_EQ(o->uid, 1000u);
    EXPECT_EQ(o->chroot_base_dir, "/srv/jailer");
    EXPECT_EQ(o->chroot_dir(), "/srv/jailer/ember/fn-1/root");
    EXPECT_EQ(o->parent_cgroup, "ember") << "the exec file's name by default";
    EXPECT_EQ(o->netns, "/var/run/netns/fn1");
    EXPECT_TRUE(o->daemonize);
    EXPECT_TRUE(o->new_pid_ns);
    EXPECT_EQ(o->cgroup_version, 2);
    ASSERT_EQ(o->cgroups.size(), 2u);
    EXPECT_EQ(o->cgroups[1].file, "memory.max");
    EXPECT_EQ(o->cgroups[1].value, "134217728");
    ASSERT_EQ(o->resource_limits.size(), 2u);
    EXPECT_EQ(o->resource_limits[0].resource, RLIMIT_NOFILE);
    EXPECT_EQ(o->resource_limits[1].value, 250000000u);
    EXPECT_EQ(o->exec_args, (std::vector<std::string>{"--config-file", "vm.json"}));
    EXPECT_FALSE(o->keep_fd);
    auto kept = parse(with({"--keep-fd", "3"}));
    ASSERT_TRUE(kept) << kept.error().message;
    EXPECT_EQ(kept->keep_fd, 3);

    auto plain = parse(minimal());
    ASSERT_TRUE(plain);
    EXPECT_EQ(plain->cgroup_version, 1);
    EXPECT_FALSE(plain->daemonize);
    EXPECT_TRUE(plain->exec_args.empty());
}

TEST(JailerOptions, EachBadFlagIsRefusedByName) {
    struct Case {
        std::vector<std::string> args;
        const char* message;
    };
    const std::vector<Case> cases = {
        {{"--exec-file", "/usr/bin/ember", "--uid", "1", "--gid", "1"}, "--id: missing"},
        {{"--id", "a", "--uid", "1", "--gid", "1"}, "--exec-file: missing"},
        {{"--id", "a", "--exec-file", "/usr/bin/ember", "--gid", "1"}, "--uid: missing"},
        {with({"--id", "b"}), "--id: given twice"},
        {{"--id", "has space", "--exec-file", "/e/ember", "--uid", "1", "--gid", "1"},
         "--id: 'has space' must be 1-64 characters"},
        {{"--id", std::string(65, 'a'), "--exec-file", "/e/ember", "--uid", "1", "--gid", "1"},
         "must be 1-64 characters"},
        {{"--id", "a", "--exec-file", "bin/ember", "--uid", "1", "--gid", "1"},
         "--exec-file: 'bin/ember' is not absolute"},
        {{"--id", "a", "--exec-file", "/usr/bin/firecracker", "--uid", "1", "--gid", "1"},
         "must start with 'ember', got 'firecracker'"},
        {{"--id", "a", "--exec-file", "/e/ember", "--uid", "0", "--gid", "1"}, "--allow-root"},
        {{"--id", "a", "--exec-file", "/e/ember", "--uid", "1", "--gid", "0"}, "--allow-root"},
        {{"--id", "a", "--exec-file", "/e/ember", "--uid", "-1", "--gid", "1"},
         "--uid: '-1' is not a whole number"},
        {{"--id", "a", "--exec-file", "/e/ember", "--uid", "4294967295", "--gid", "1"},
         "--uid: 4294967295 is not a valid id"},
        {with({"--chroot-base-dir", "srv"}), "--chroot-base-dir: 'srv' must be absolute"},
        {with({"--chroot-base-dir", "/srv/../etc"}), "without '..'"},
        {with({"--netns", "fn1"}), "--netns: 'fn1' is not absolute"},
        {with({"--cgroup-version", "3"}), "--cgroup-version: must be 1 or 2, got '3'"},
        {with({"--cgroup", "cpus"}), "--cgroup: 'cpus' is not of the form name=value"},
        {with({"--cgroup", "=1"}), "not of the form name=value"},
        {with({"--cgroup", "../tasks=1"}), "is not a cgroup file name"},
        {with({"--cgroup", "cpus=1"}), "'cpus' is not a cgroup file name"},
        {with({"--parent-cgroup", "/abs"}), "--parent-cgroup: '/abs' must be a relative path"},
        {with({"--parent-cgroup", "a/../../b"}), "without '..'"},
        {with({"--resource-limit", "cpu=1"}), "unknown resource 'cpu' (fsize or no-file)"},
        {with({"--resource-limit", "fsize=lots"}), "--resource-limit: 'lots' is not a whole"},
        {with({"--netns"}), "--netns: needs a value"},
        {with({"--keep-fd", "2"}), "--keep-fd: 2 is not a descriptor above stdio"},
        {with({"--keep-fd", "1048576"}), "--keep-fd: 1048576 is not a descriptor above stdio"},
        {with({"--keep-fd", "3", "--keep-fd", "4"}), "--keep-fd: given twice"},
        {with({"--seccomp-level", "2"}), "unknown argument '--seccomp-level'"},
    };
    for (const auto& c : cases) {
        std::string got = error_of(parse(c.args));
        EXPECT_NE(got.find(c.message), std::string::npos)
            << "expected '" << c.message << "', got '" << got << "'";
    }
}

TEST(JailerOptions, RootIdsOnlyWhenAskedFor) {
    auto o =
        parse({"--id", "a", "--exec-file", "/e/ember", "--uid", "0", "--gid", "0", "--allow-root"});
    ASSERT_TRUE(o) << o.error().message;
    EXPECT_EQ(o->uid, 0u);
}

TEST(JailerOptions, TheExecFileMustBeAnExecutableFile) {
    EXPECT_TRUE(check_exec_file("/bin/sh"));
    auto missing = check_exec_file("/nonexistent/ember");
    ASSERT_FALSE(missing);
    EXPECT_NE(missing.error().message.find("/nonexistent/ember"), std::string::npos);
    auto dir = check_exec_file("/tmp");
    ASSERT_FALSE(dir);
    EXPECT_NE(dir.error().message.find("is not a regular file"), std::string::npos);
    testing::TempDir tmp;
    auto data = check_exec_file(tmp.write("ember", "not a program"));  // mode 0644
    ASSERT_FALSE(data) << "not executable";
    EXPECT_NE(data.error().message.find("Permission denied"), std::string::npos)
        << data.error().message;
}

}  // namespace
}  // namespace ember::jailer
