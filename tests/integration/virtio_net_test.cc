// virtio-net end to end, inside a network namespace this test process makes for itself: the
// guest sends a frame the host reads from the tap, and receives one the host writes.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/support/ember_process.h"
#include "tests/support/netns.h"

namespace ember::testing {
namespace {

TEST(VirtioNet, GuestSendsAndReceivesEthernetFramesThroughTheTap) {
    ASSERT_TRUE(enter_new_netns());
    ASSERT_TRUE(create_tap("vmtap0"));
    auto sock = PacketSocket::open("vmtap0");
    ASSERT_TRUE(sock);
    TempDir dir;
    auto config =
        dir.write("vm.json",
                  R"({"boot-source": {"kernel_image_path": ")" + std::string(EMBER_GUEST_DIR) +
                      R"(/virtio_net.elf"}, "machine-config": {"vcpu_count": 1, "mem_size_mib": 16},
        "network-interfaces": [{"iface_id": "eth0", "host_dev_name": "vmtap0", "guest_mac": "06:00:ac:10:00:02"}]})");
    int out[2];
    ASSERT_EQ(::pipe(out), 0);
    int devnull = ::open("/dev/null", O_RDWR);
    pid_t pid =
        spawn({EMBER_BINARY, "--no-api", "--config-file", config}, devnull, out[1], devnull);
    ::close(out[1]);

    EXPECT_NE(read_until(out[0], "net: sent\n", std::chrono::seconds(30)).find("net: sent\n"),
              std::string::npos);
    std::string from_guest;
    for (int i = 0; i < 50 && from_guest.find("hello from the guest") == std::string::npos; ++i)
        from_guest = sock->receive(200);
    ASSERT_GE(from_guest.size(), 14u);
    EXPECT_EQ(from_guest.substr(6, 6), std::string("\x06\x00\xac\x10\x00\x02", 6))
        << "source is the guest's MAC";
    EXPECT_EQ(from_guest.substr(14), "hello from the guest");

    std::string to_guest = std::string("\x06\x00\xac\x10\x00\x02", 6) +
                           std::string("\x02\x00\x00\x00\x00\x01", 6) + "\x88\xb5" +
                           "hello from the host";
    ASSERT_TRUE(sock->send(to_guest));
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
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ::close(out[0]);
    ::close(devnull);
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
                  r.err, "ember: error: network interface 'eth0': tap 'notap9' does not exist"),
              1)
        << r.err;
}

}  // namespace
}  // namespace ember::testing
