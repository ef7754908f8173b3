// The API's socket against a real ember process: a socket file that exists or is stale, many
// connections at once, and a thread the host will not give.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <simdjson.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <regex>
#include <sstream>
#include <thread>

#include "core/base/unique_fd.h"
#include "tests/support/api_ember.h"
#include "tests/support/ember_process.h"
#include "tests/support/netns.h"
#include "tests/support/pids_cgroup.h"
#include "tests/support/uds_http.h"

namespace ember::testing {
namespace {

using namespace std::chrono_literals;

void bind_stale_socket(const std::string& path) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ::close(fd);
}

std::string in_use(const std::string& path) {
    return "Failed to open the API socket at: " + path + ". Check that it is not already used.";
}

TEST(Api, AnExistingSocketFileIsRefusedAsFirecrackerRefusesIt) {
    ApiEmber first;
    auto c = first.client();
    auto second = run_process({EMBER_BINARY, "--api-sock", first.sock}, kFailsafe);
    EXPECT_EQ(second.exit_code, 1);
    EXPECT_NE(second.err.find(in_use(first.sock)), std::string::npos) << second.err;
    EXPECT_NE(second.err.find("another process is listening on it"), std::string::npos);
    EXPECT_EQ(call(c, "GET", "/").status, 200);

    // A socket file nobody listens on, as a crashed VMM leaves behind: refused too, and kept.
    TempDir dir;
    const std::string stale = dir.path() + "/stale.sock";
    bind_stale_socket(stale);
    auto refused = run_process({EMBER_BINARY, "--api-sock", stale}, kFailsafe);
    EXPECT_EQ(refused.exit_code, 1);
    EXPECT_NE(refused.err.find(in_use(stale)), std::string::npos) << refused.err;
    struct stat st{};
    EXPECT_EQ(::lstat(stale.c_str(), &st), 0);
}

TEST(Api, AStaleSocketIsReplacedWhenAsked) {
    ApiEmber takeover({"--replace-stale-socket"}, bind_stale_socket);
    auto t = takeover.client();
    EXPECT_EQ(call(t, "GET", "/").status, 200) << takeover.log();
    EXPECT_EQ(takeover.stop(), 0) << takeover.log();
}

// The inodes of the listening Unix sockets bound to `path`, from /proc/net/unix.
std::vector<std::string> listening_inodes(const std::string& path) {
    std::ifstream in("/proc/net/unix");
    std::string line;
    std::vector<std::string> inodes;
    std::getline(in, line);
    while (std::getline(in, line)) {
        std::istringstream fields(line);
        std::string num, refs, proto, flags, type, state, inode, name;
        fields >> num >> refs >> proto >> flags >> type >> state >> inode >> name;
        // ember binds under a staging name beside the path and links the path to it once it
        // listens (".ember-api-PID.sock").
        const bool beside = name.starts_with(path.substr(0, path.rfind('/') + 1) + ".ember-api-");
        if ((name == path || beside) && flags == "00010000")
            inodes.push_back("socket:[" + inode + "]");
    }
    return inodes;
}

bool holds_any(pid_t pid, const std::vector<std::string>& targets) {
    const std::string dir = "/proc/" + std::to_string(pid) + "/fd";
    for (int fd = 0; fd < 64; ++fd) {
        char buf[64];
        ssize_t n = ::readlink((dir + "/" + std::to_string(fd)).c_str(), buf, sizeof buf);
        if (n > 0 &&
            std::find(targets.begin(), targets.end(), std::string(buf, n)) != targets.end())
            return true;
    }
    return false;
}

// Clients that each keep a connection open: each is served on a thread of its own, under the API
// thread's seccomp filter. glibc gives each new thread that allocates an arena of its own, and the
// first time a process has more than 8 it reads the CPU count from /sys, an openat that filter
// forbids: the ninth or so connection killed ember (seen first as a rare failure of the stale
// socket race below, whose losers each connect to the winner).
TEST(Api, ManyConnectionsHeldOpenAtOnceAreAllServed) {
    ApiEmber ember;
    std::vector<UdsHttpClient> clients;
    for (int i = 0; i < 24; ++i) {
        clients.push_back(ember.client());
        EXPECT_EQ(call(clients.back(), "GET", "/").status, 200) << "connection " << i << "\n"
                                                                << ember.log();
    }
    for (auto& c : clients) EXPECT_EQ(call(c, "GET", "/machine-config").status, 200);
    EXPECT_EQ(ember.stop(), 0) << ember.log();
}

// Many embers told to replace the same stale socket at once: exactly one of them serves on it,
// and the others are refused. Without the lock, two could each unlink and bind, one of them then
// serving on a socket file that is gone. A race, so a run without the lock fails only sometimes.
TEST(Api, EmbersReplacingOneStaleSocketAtOnceLeaveExactlyOneServing) {
    TempDir dir;
    const std::string sock = dir.path() + "/api.sock";
    bind_stale_socket(sock);
    constexpr int kEmbers = 8;
    std::vector<pid_t> pids;
    int devnull = ::open("/dev/null", O_RDWR);
    for (int i = 0; i < kEmbers; ++i)
        pids.push_back(spawn({EMBER_BINARY, "--api-sock", sock, "--replace-stale-socket"}, devnull,
                             devnull, devnull));
    ::close(devnull);
    // Each ends either refused (exited) or listening on a socket bound to the path.
    std::vector<int> exit_codes(kEmbers, -2);
    int listening = 0;
    const auto deadline = std::chrono::steady_clock::now() + kFailsafe;
    while (std::chrono::steady_clock::now() < deadline) {
        listening = 0;
        int settled = 0;
        auto inodes = listening_inodes(sock);
        for (int i = 0; i < kEmbers; ++i) {
            int status = 0;
            if (exit_codes[i] == -2 && ::waitpid(pids[i], &status, WNOHANG) == pids[i])
                exit_codes[i] = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
            if (exit_codes[i] != -2) {
                ++settled;
            } else if (holds_any(pids[i], inodes)) {
                ++listening;
                ++settled;
            }
        }
        if (settled == kEmbers) break;
        std::this_thread::sleep_for(10ms);
    }
    EXPECT_EQ(listening, 1);
    EXPECT_EQ(std::count(exit_codes.begin(), exit_codes.end(), 1), kEmbers - 1);
    auto c = UdsHttpClient::connect(sock);
    ASSERT_TRUE(c) << c.error().message;
    EXPECT_EQ(call(*c, "GET", "/").status, 200);
    for (int i = 0; i < kEmbers; ++i) {
        if (exit_codes[i] != -2) continue;
        ::kill(pids[i], SIGTERM);
        int status = 0;
        ::waitpid(pids[i], &status, 0);
        EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
    }
}

// With the host's task limit reached, a thread ember cannot create is an error it reports: a new
// API connection is closed and the server keeps serving; a vCPU that cannot start fails
// InstanceStart with the reason, and (as in Firecracker) the VM can be started once the host
// allows. Both used to end in std::terminate.
TEST(Api, AThreadThatCannotBeCreatedIsAnErrorNotACrash) {
    auto cgroup = PidsCgroup::create();
    ASSERT_TRUE(cgroup) << cgroup.error().message;
    ApiEmber ember;
    ASSERT_TRUE(cgroup->add(ember.pid)) << ember.log();
    auto c = ember.client();
    EXPECT_EQ(call(c, "PUT", "/machine-config", R"({"vcpu_count": 2, "mem_size_mib": 16})").status,
              204);
    EXPECT_EQ(call(c, "PUT", "/boot-source", boot_source(guest("counter"))).status, 204);
    auto tasks = cgroup->current();
    ASSERT_TRUE(tasks);
    ASSERT_TRUE(cgroup->set_max(*tasks));

    // One thread serves every connection, so a new client needs no thread of its own.
    auto another = UdsHttpClient::connect(ember.sock);
    ASSERT_TRUE(another) << another.error().message;
    EXPECT_EQ(call(*another, "GET", "/").status, 200) << ember.log();
    EXPECT_EQ(call(c, "GET", "/").status, 200) << ember.log();

    expect_fault(call(c, "PUT", "/actions", R"({"action_type": "InstanceStart"})"),
                 "cannot start a vCPU thread");
    EXPECT_NE(call(c, "GET", "/").body.find("\"state\":\"Not started\""), std::string::npos);
    ASSERT_TRUE(cgroup->set_unlimited());
    EXPECT_EQ(call(c, "PUT", "/actions", R"({"action_type": "InstanceStart"})").status, 204)
        << ember.log();
    EXPECT_NE(call(c, "GET", "/").body.find("\"state\":\"Running\""), std::string::npos);
    EXPECT_EQ(ember.stop(), 0) << ember.log();
}

}  // namespace
}  // namespace ember::testing
