// virtio-net end to end, inside a network namespace this test process makes for itself: the
// guest sends a frame the host reads from the tap, and receives one the host writes, on either
// engine, and on Sync where io_uring is unavailable.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/support/api_ember.h"
#include "tests/support/ember_process.h"
#include "tests/support/netns.h"
#include "tests/support/uring_tap.h"

namespace ember::testing {
namespace {

// The guest's exchange with the host through the tap, ember started as `prefix` then ember with the
// config, the interface on `engine`; ember's stderr. `uring` says whether this host's taps take
// io_uring at all.
std::string exchange_frames(const std::string& engine, std::vector<std::string> prefix = {},
                            bool* uring = nullptr) {
    static int n = 0;
    const std::string tap = "vmtap" + std::to_string(n++);
    EXPECT_TRUE(create_tap(tap));
    if (uring) *uring = taps_take_io_uring(tap);
    auto sock = PacketSocket::open(tap);
    EXPECT_TRUE(sock);
    if (!sock) return "";
    TempDir dir;
    auto config = dir.write(
        "vm.json",
        R"({"boot-source": {"kernel_image_path": ")" + std::string(EMBER_GUEST_DIR) +
            R"(/virtio_net.elf"}, "machine-config": {"vcpu_count": 1, "mem_size_mib": 16},
        "network-interfaces": [{"iface_id": "eth0", "host_dev_name": ")" +
            tap + R"(", "guest_mac": "06:00:ac:10:00:02", "io_engine": ")" + engine + R"("}]})");
    int out[2];
    EXPECT_EQ(::pipe(out), 0);
    int devnull = ::open("/dev/null", O_RDWR);
    const std::string err_path = dir.path() + "/err";
    int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    prefix.insert(prefix.end(), {EMBER_BINARY, "--no-api", "--config-file", config});
    pid_t pid = spawn(prefix, devnull, out[1], err);
    ::close(out[1]);
    ::close(err);

    // ember's own words where the guest never sent: a guest that triple-faulted in the nested
    // runner (issue 15) says so there, and tests/run-all tells that fault from the test's.
    const std::string sent = read_until(out[0], "net: sent\n", std::chrono::seconds(30));
    EXPECT_NE(sent.find("net: sent\n"), std::string::npos) << "the guest printed:\n"
                                                           << sent << "\nember wrote:\n"
                                                           << read_file(err_path);
    std::string from_guest;
    for (int i = 0; i < 50 && from_guest.find("hello from the guest") == std::string::npos; ++i)
        from_guest = sock->receive(200);
    EXPECT_GE(from_guest.size(), 14u);
    if (from_guest.size() >= 14) {
        EXPECT_EQ(from_guest.substr(6, 6), std::string("\x06\x00\xac\x10\x00\x02", 6))
            << "source is the guest's MAC";
        EXPECT_EQ(from_guest.substr(14), "hello from the guest");
    }

    std::string to_guest = std::string("\x06\x00\xac\x10\x00\x02", 6) +
                           std::string("\x02\x00\x00\x00\x00\x01", 6) + "\x88\xb5" +
                           "hello from the host";
    EXPECT_TRUE(sock->send(to_guest));
    EXPECT_NE(read_until(out[0], "net: received hello from the host\n", std::chrono::seconds(30))
                  .find("net: received hello from the host"),
              std::string::npos);
    int status = 0;
    for (int i = 0; i < 300 && ::waitpid(pid, &status, WNOHANG) == 0; ++i) ::usleep(100000);
    if (::waitpid(pid, &status, WNOHANG) == 0) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
        ADD_FAILURE() << "ember did not exit";
    }
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << read_file(err_path);
    ::close(out[0]);
    ::close(devnull);
    return read_file(err_path);
}

class VirtioNet : public ::testing::TestWithParam<const char*> {};

TEST_P(VirtioNet, GuestSendsAndReceivesEthernetFramesThroughTheTap) {
    ASSERT_TRUE(enter_new_netns());
    bool uring = false;
    const std::string err = exchange_frames(GetParam(), {}, &uring);
    // Sync is never a fallback; Async falls back, saying so, only where the kernel cannot.
    const bool fell_back = err.find("io_uring is unavailable") != std::string::npos;
    EXPECT_EQ(fell_back, GetParam() == std::string("Async") && !uring) << err;
}

INSTANTIATE_TEST_SUITE_P(Engines, VirtioNet, ::testing::Values("Async", "Sync"));

// Where io_uring is missing or forbidden (ENOSYS, EPERM), an Async interface falls back to Sync
// with a log line, and works, as a drive does.
TEST(VirtioNetFallback, AsyncFallsBackToSyncWhereIoUringIsUnavailable) {
    ASSERT_TRUE(enter_new_netns());
    for (const char* errno_number : {"38", "1"}) {
        const std::string err = exchange_frames("Async", {EMBER_WITHOUT_IO_URING, errno_number});
        EXPECT_NE(
            err.find("network interface 'eth0': io_uring is unavailable (io_uring_queue_init: "),
            std::string::npos)
            << err;
        EXPECT_NE(err.find("using io_engine Sync"), std::string::npos) << err;
    }
}

// GET /vm/config says which engine each interface runs on: the one asked for, or Sync after a
// fallback.
TEST(VirtioNetFallback, TheRunningConfigurationSaysWhichEngineRuns) {
    ASSERT_TRUE(enter_new_netns());
    ASSERT_TRUE(create_tap("cfgtap0"));
    const bool uring = taps_take_io_uring("cfgtap0");
    for (bool without : {false, true}) {
        TempDir dir;
        const std::string sock = dir.path() + "/api.sock";
        std::vector<std::string> argv;
        if (without) argv = {EMBER_WITHOUT_IO_URING, "38"};
        argv.insert(argv.end(),
                    {EMBER_BINARY, "--api-sock", sock, "--serial-out", dir.path() + "/console"});
        int devnull = ::open("/dev/null", O_RDWR);
        pid_t pid = spawn(argv, devnull, devnull, devnull);
        ::close(devnull);
        auto c = EmberApi::connect(sock);
        ASSERT_TRUE(c) << c.error().message;
        auto put = [&](const std::string& path, const std::string& body) {
            auto r = c->request("PUT", path, body);
            return r ? r->status : -1;
        };
        EXPECT_EQ(put("/machine-config", R"({"vcpu_count": 1, "mem_size_mib": 16})"), 204);
        EXPECT_EQ(put("/boot-source", R"({"kernel_image_path": ")" + std::string(EMBER_GUEST_DIR) +
                                          "/ticker.elf\"}"),
                  204);
        EXPECT_EQ(put("/network-interfaces/eth0",
                      R"({"iface_id": "eth0", "host_dev_name": "cfgtap0", "io_engine": "Async"})"),
                  204);
        EXPECT_EQ(put("/actions", R"({"action_type": "InstanceStart"})"), 204);
        auto config = c->request("GET", "/vm/config");
        ASSERT_TRUE(config);
        // The only io_engine there: the VM has no drive.
        EXPECT_NE(config->body.find(std::string(R"("io_engine":")") +
                                    (without || !uring ? "Sync" : "Async") + "\""),
                  std::string::npos)
            << config->body;
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
    }
}

TEST(VirtioNet, MissingTapIsAClearConfigurationError) {
    ASSERT_TRUE(enter_new_netns());
    TempDir dir;
    auto config =
        dir.write("vm.json",
                  R"({"boot-source": {"kernel_image_path": ")" + std::string(EMBER_GUEST_DIR) +
                      R"(/virtio_net.elf"}, "machine-config": {"vcpu_count": 1, "mem_size_mib": 16},
        "network-interfaces": [{"iface_id": "eth0", "host_dev_name": "notap9"}]})");
    auto r = run_process({EMBER_BINARY, "--no-api", "--config-file", config}, kFailsafe);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(count_lines_containing(
                  r.err, ":ERROR] network interface 'eth0': tap 'notap9' does not exist"),
              1)
        << r.err;
}

// As Firecracker, a network interface is refused at its PUT when its tap cannot be used: a
// multi-queue tap (ember attaches one queue), a tun, a name that is no interface.
TEST(VirtioNet, AMultiQueueTapOrATunIsRefusedAtItsPut) {
    ASSERT_TRUE(enter_new_netns());
    ASSERT_TRUE(create_multi_queue_tap("mqtap0"));
    ASSERT_TRUE(create_tap("sqtap0"));
    ASSERT_TRUE(create_tun("tun0"));
    ApiEmber ember;
    auto c = ember.client();
    auto put = [&](const std::string& tap) {
        return call(c, "PUT", "/network-interfaces/eth0",
                    R"({"iface_id": "eth0", "host_dev_name": ")" + tap + "\"}");
    };
    // This test's network namespace is not the one /sys shows, so the message names both kinds.
    expect_fault(put("mqtap0"), "tap 'mqtap0' is not a single-queue tap (a multi-queue tap");
    expect_fault(put("tun0"), "tap 'tun0' is not a single-queue tap");
    expect_fault(put("lo"), "tap 'lo' is not a single-queue tap");
    EXPECT_EQ(put("sqtap0").status, 204) << "and the tap is let go again";
    EXPECT_EQ(put("sqtap0").status, 204);
}

}  // namespace
}  // namespace ember::testing
