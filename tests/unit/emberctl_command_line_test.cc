// emberctl's command line: what each command takes, and the mistakes refused before anything runs.
#include "vmm/tools/emberctl/command_line.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ember::emberctl {
namespace {

Result<CommandLine> parse(std::vector<std::string> args) {
    return parse_command_line(args);
}

TEST(EmberctlCommandLine, BootTakesItsFlagsAndTheCommonOnes) {
    auto cl = parse({"--sock", "/run/a.sock", "--timeout-ms", "500", "boot", "--kernel", "vmlinux",
                     "--rootfs", "root.ext4", "--vcpus", "2", "--mem", "256", "--net-placeholder"});
    ASSERT_FALSE(cl);  // a flag boot does not take
    EXPECT_NE(cl.error().message.find("--net-placeholder"), std::string::npos);

    cl = parse({"--sock", "/run/a.sock", "--timeout-ms", "500", "boot", "--kernel", "vmlinux",
                "--rootfs", "root.ext4", "--vcpus", "2", "--mem", "256"});
    ASSERT_TRUE(cl) << cl.error().message;
    EXPECT_EQ(cl->command, Command::Boot);
    EXPECT_EQ(cl->timeout.count(), 500);
    EXPECT_EQ(cl->kernel, "vmlinux");
    EXPECT_EQ(cl->rootfs, "root.ext4");
    EXPECT_EQ(cl->vcpus, 2u);
    EXPECT_EQ(cl->mem_mib, 256u);
}

TEST(EmberctlCommandLine, RestoreTakesNetworkOverridesAsIfaceEqualsTap) {
    auto cl = parse({"--sock", "s", "restore", "--state", "a.state", "--mem-file", "a.mem", "--net",
                     "eth0=tap7", "--resume"});
    ASSERT_TRUE(cl) << cl.error().message;
    ASSERT_EQ(cl->network_overrides.size(), 1u);
    EXPECT_EQ(cl->network_overrides[0].iface_id, "eth0");
    EXPECT_EQ(cl->network_overrides[0].host_dev_name, "tap7");
    EXPECT_TRUE(cl->resume);
    EXPECT_FALSE(
        parse({"--sock", "s", "restore", "--state", "a", "--mem-file", "b", "--net", "eth0"}));
    EXPECT_FALSE(parse({"--sock", "s", "restore", "--state", "a"}));  // no --mem-file
}

TEST(EmberctlCommandLine, RestoreFromAStoreTakesAManifestInsteadOfTheFiles) {
    auto cl =
        parse({"--sock", "s", "restore", "--manifest", "https://cdn/snapshots/fn.json", "--cache",
               "/var/cache/ember/chunks", "--ember-uffd", "/opt/ember-uffd", "--resume"});
    ASSERT_TRUE(cl) << cl.error().message;
    EXPECT_EQ(cl->manifest, "https://cdn/snapshots/fn.json");
    EXPECT_EQ(cl->cache_dir, "/var/cache/ember/chunks");
    EXPECT_EQ(cl->ember_uffd, "/opt/ember-uffd");
    auto both = parse({"--sock", "s", "restore", "--manifest", "u", "--state", "a.state"});
    ASSERT_FALSE(both);
    EXPECT_NE(both.error().message.find("not both"), std::string::npos);
    auto cache_alone =
        parse({"--sock", "s", "restore", "--state", "a", "--mem-file", "b", "--cache", "/c"});
    ASSERT_FALSE(cache_alone);
    EXPECT_NE(cache_alone.error().message.find("go with --manifest"), std::string::npos);
    EXPECT_FALSE(parse({"--sock", "s", "snapshot", "--manifest", "u"}));
}

TEST(EmberctlCommandLine, RestoreFromAStoresViewTakesTheCacheAndAPin) {
    auto cl = parse({"--sock", "s", "restore", "--manifest", "s3://b/snapshots/fn.json", "--cache",
                     "/c", "--view", "--manifest-sha256", std::string(64, 'a'), "--ember-snapshot",
                     "/opt/ember-snapshot", "--cache-bytes", "68719476736", "--resume"});
    ASSERT_TRUE(cl) << cl.error().message;
    EXPECT_TRUE(cl->view);
    EXPECT_EQ(cl->cache_bytes, uint64_t{64} << 30);
    EXPECT_FALSE(parse(
        {"--sock", "s", "restore", "--manifest", "u", "--cache", "/c", "--cache-bytes", "4G"}));
    EXPECT_FALSE(parse({"--sock", "s", "restore", "--manifest", "u", "--cache-bytes", "4096"}));
    EXPECT_EQ(cl->manifest_sha256, std::string(64, 'a'));
    EXPECT_EQ(cl->ember_snapshot, "/opt/ember-snapshot");
    auto no_cache = parse({"--sock", "s", "restore", "--manifest", "u", "--view"});
    ASSERT_FALSE(no_cache);
    EXPECT_NE(no_cache.error().message.find("--view takes --cache"), std::string::npos);
    EXPECT_FALSE(parse({"--sock", "s", "restore", "--manifest", "u", "--cache", "/c", "--view",
                        "--ember-uffd", "/opt/ember-uffd"}));
    // ember-uffd takes the pin and the drive root as a view does.
    auto lazily =
        parse({"--sock", "s", "restore", "--manifest", "u", "--manifest-sha256", "a",
               "--drive-root", "/d", "--writable-drive", "scratch", "--writable-drive", "logs"});
    ASSERT_TRUE(lazily) << lazily.error().message;
    EXPECT_EQ(lazily->manifest_sha256, "a");
    EXPECT_EQ(lazily->drive_root, "/d");
    EXPECT_EQ(lazily->writable_drives, (std::vector<std::string>{"scratch", "logs"}));
    auto tool_alone = parse(
        {"--sock", "s", "restore", "--manifest", "u", "--ember-snapshot", "/opt/ember-snapshot"});
    ASSERT_FALSE(tool_alone);
    EXPECT_NE(tool_alone.error().message.find("goes with --view or --on-host"), std::string::npos);
    EXPECT_FALSE(
        parse({"--sock", "s", "restore", "--state", "a", "--mem-file", "b", "--drive-root", "/d"}));
    EXPECT_FALSE(parse(
        {"--sock", "s", "restore", "--state", "a", "--mem-file", "b", "--writable-drive", "x"}));
    EXPECT_FALSE(parse({"--sock", "s", "restore", "--state", "a", "--mem-file", "b", "--view"}));
    EXPECT_FALSE(parse({"--sock", "s", "snapshot", "--view"}));
}

// --on-host: from the view where one is made, else through ember-uffd (which it may be given),
// the view then made in the background; it needs the cache, and is not --view as well.
TEST(EmberctlCommandLine, RestoreOnAHostTakesTheCacheAPinAndBothTools) {
    auto cl = parse({"--sock", "s", "restore", "--manifest", "u", "--cache", "/c", "--on-host",
                     "--manifest-sha256", std::string(64, 'b'), "--ember-snapshot",
                     "/opt/ember-snapshot", "--ember-uffd", "/opt/ember-uffd"});
    ASSERT_TRUE(cl) << cl.error().message;
    EXPECT_TRUE(cl->on_host);
    EXPECT_FALSE(cl->view);
    EXPECT_EQ(cl->ember_uffd, "/opt/ember-uffd");
    auto no_cache = parse({"--sock", "s", "restore", "--manifest", "u", "--on-host"});
    ASSERT_FALSE(no_cache);
    EXPECT_NE(no_cache.error().message.find("--on-host takes --cache"), std::string::npos);
    EXPECT_FALSE(parse(
        {"--sock", "s", "restore", "--manifest", "u", "--cache", "/c", "--on-host", "--view"}));
    EXPECT_FALSE(parse({"--sock", "s", "restore", "--state", "a", "--mem-file", "b", "--on-host"}));
    EXPECT_FALSE(parse({"--sock", "s", "boot", "--kernel", "k", "--on-host"}));
}

TEST(EmberctlCommandLine, CallTakesAMethodAPathAndOneBody) {
    auto cl = parse({"--sock", "s", "call", "PUT", "/drives/rootfs", R"({"drive_id": "rootfs"})"});
    ASSERT_TRUE(cl) << cl.error().message;
    EXPECT_EQ(cl->command, Command::Call);
    EXPECT_EQ(cl->method, "PUT");
    EXPECT_EQ(cl->request_path, "/drives/rootfs");
    EXPECT_EQ(cl->body, R"({"drive_id": "rootfs"})");

    cl = parse({"--sock", "s", "call", "GET", "/"});
    ASSERT_TRUE(cl) << cl.error().message;
    EXPECT_FALSE(cl->body);
    // An empty body is a body: a third operand after it is refused.
    EXPECT_FALSE(parse({"--sock", "s", "call", "PUT", "/a", "", "x"}));
}

TEST(EmberctlCommandLine, CallRefusesWhatCouldNotBeARequestLine) {
    EXPECT_FALSE(parse({"--sock", "s", "call", "get", "/"}));
    EXPECT_FALSE(parse({"--sock", "s", "call", "GET", "vm/config"}));
    EXPECT_FALSE(parse({"--sock", "s", "call", "GET", "/ HTTP/1.0\r\nX: y"}));
    EXPECT_FALSE(parse({"--sock", "s", "call", "GET"}));
    EXPECT_FALSE(parse({"call", "GET", "/"}));  // no --sock
}

TEST(EmberctlCommandLine, MistakesAreRefusedWithTheirWords) {
    auto cl = parse({"--sock", "s", "status", "pause"});
    ASSERT_FALSE(cl);
    EXPECT_NE(cl.error().message.find("one command only"), std::string::npos);
    EXPECT_FALSE(parse({"--sock", "s", "frobnicate"}));
    EXPECT_FALSE(parse({"--sock", "s", "--timeout-ms", "0", "status"}));
    EXPECT_FALSE(parse({"--sock", "s", "pause", "--diff"}));
    EXPECT_FALSE(parse({"--sock", "s"}));  // no command
}

}  // namespace
}  // namespace ember::emberctl
