// A guest as an attacker (issue 63): test guests that drive their devices as no driver should, for
// a while, and what ember must still be afterwards.
// - Every kind of bad frame a guest can send (runts, GSO and checksum headers the tap refuses, a
//   chain the device may write) costs only those frames: the good frames between them go out, and
//   the guest's network works both ways afterwards, on either engine.
// - A guest that misconfigures its device in a loop makes ember write a bounded log.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <set>
#include <thread>

#include "core/base/log_limit.h"
#include "tests/support/api_ember.h"
#include "tests/support/ember_process.h"
#include "tests/support/netns.h"

namespace ember::testing {
namespace {

// What the issue allows a guest looping on a misconfiguration for 10 s to make ember write.
constexpr size_t kMaxLogBytes = 100 << 10;

// The most lines one place writes through its limit in `ran` (log_limit.h): its burst, and one
// for each period that began meanwhile.
int most_lines(std::chrono::steady_clock::duration ran) {
    return static_cast<int>(log::LineLimit::kBurst) + 1 +
           static_cast<int>(ran / log::LineLimit::kPeriod);
}

// ember with `config`, no API, its console and log in files of `dir`; its pid.
pid_t run_config(const TempDir& dir, const std::string& config) {
    int devnull = ::open("/dev/null", O_RDWR);
    int out = ::open((dir.path() + "/console").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int err = ::open((dir.path() + "/stderr").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const pid_t pid = spawn({EMBER_BINARY, "--no-api", "--config-file", config}, devnull, out, err);
    ::close(devnull);
    ::close(out);
    ::close(err);
    return pid;
}

// Whether `pid` has ended, without reaping it.
bool ended(pid_t pid) {
    siginfo_t info{};
    return ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
           info.si_pid == pid;
}

class HostileGuestNet : public ::testing::TestWithParam<const char*> {};

TEST_P(HostileGuestNet, BadFramesCostOnlyThemselvesAndTheNetworkWorksAfter) {
    ASSERT_TRUE(enter_new_netns());
    ASSERT_TRUE(create_tap("badtap0"));
    auto sock = PacketSocket::open("badtap0");
    ASSERT_TRUE(sock);
    TempDir dir;
    const std::string config = dir.write(
        "vm.json", R"({"boot-source": {"kernel_image_path": ")" + guest("net_bad_frames") +
                       R"("}, "machine-config": {"vcpu_count": 1, "mem_size_mib": 16},
        "network-interfaces": [{"iface_id": "eth0", "host_dev_name": "badtap0",
                                "guest_mac": "06:00:ac:10:00:02", "io_engine": ")" +
                       GetParam() + R"("}]})");
    const auto started = std::chrono::steady_clock::now();
    const pid_t pid = run_config(dir, config);
    const std::string console = dir.path() + "/console";
    // The good frames as they come (read as the guest sends, so the socket's buffer never fills).
    std::set<std::string> good;
    const auto deadline = std::chrono::steady_clock::now() + kFailsafe;
    while (read_file(console).find("net: sent\n") == std::string::npos &&
           std::chrono::steady_clock::now() < deadline && !ended(pid)) {
        const std::string f = sock->receive(50);
        if (f.size() > 14 && f.substr(14, 5) == "good ") good.insert(f.substr(14));
    }
    for (std::string f; !(f = sock->receive(200)).empty();)
        if (f.size() > 14 && f.substr(14, 5) == "good ") good.insert(f.substr(14));
    ASSERT_NE(read_file(console).find("net: sent\n"), std::string::npos)
        << read_file(console) << read_file(dir.path() + "/stderr");
    EXPECT_EQ(good.size(), 300u) << "every good frame went out, whatever came before it";
    EXPECT_EQ(good.count("bad gso") + good.count("bad csum") + good.count("writable"), 0u);

    const std::string to_guest = std::string("\x06\x00\xac\x10\x00\x02", 6) +
                                 std::string("\x02\x00\x00\x00\x00\x01", 6) + "\x88\xb5" +
                                 "still here";
    ASSERT_TRUE(sock->send(to_guest));
    const auto status = wait_for_end(pid, kFailsafe);
    ASSERT_TRUE(status);
    EXPECT_NE(read_file(console).find("net: received still here"), std::string::npos)
        << read_file(console);
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status;
    const std::string log = read_file(dir.path() + "/stderr");
    EXPECT_LE(log.size(), kMaxLogBytes);
    // 1200 refused frames: a burst of lines, then one a period, each saying how many it dropped.
    EXPECT_GE(count_lines_containing(log, "the tap refused"), 1) << log;
    const int most = most_lines(std::chrono::steady_clock::now() - started);
    EXPECT_LE(count_lines_containing(log, "the tap refused"), most) << log;
}

INSTANTIATE_TEST_SUITE_P(Engines, HostileGuestNet, ::testing::Values("Async", "Sync"));

// 3000 rounds of a queue of size 3 made live and of a ring whose index ran 1000 ahead, each a
// warning ember used to write every time (58,674 lines, 8.3 MB in 10 s): now a burst of each, a
// line a period after, and a count of what was dropped, the whole log under the issue's 100 KB.
TEST(HostileGuest, ALoopOfMisconfigurationsMakesABoundedLog) {
    TempDir dir;
    const std::string image = dir.write("disk.img", std::string(1 << 20, '\0'));
    const std::string config = dir.write(
        "vm.json", R"({"boot-source": {"kernel_image_path": ")" + guest("misconfig_loop") +
                       R"("}, "machine-config": {"vcpu_count": 1, "mem_size_mib": 16},
        "drives": [{"drive_id": "data", "path_on_host": ")" +
                       image + R"(", "is_root_device": false}]})");
    const auto started = std::chrono::steady_clock::now();
    const pid_t pid = run_config(dir, config);
    const auto status = wait_for_end(pid, kFailsafe);
    const int most = most_lines(std::chrono::steady_clock::now() - started);
    ASSERT_TRUE(status);
    const std::string console = read_file(dir.path() + "/console");
    const std::string log = read_file(dir.path() + "/stderr");
    ASSERT_NE(console.find("misconfig: done"), std::string::npos) << console << log;
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status << log;
    EXPECT_LE(log.size(), kMaxLogBytes);
    const int refused = count_lines_containing(log, "is not a power of two");
    EXPECT_GE(refused, 1) << log;
    EXPECT_LE(refused, most) << log;
    EXPECT_LE(count_lines_containing(log, "the queue is stopped until the driver resets"), most)
        << log;
    EXPECT_EQ(count_lines_containing(log, "log lines the guest caused were not written"), 1) << log;
}

}  // namespace
}  // namespace ember::testing
