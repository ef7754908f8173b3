// What a hostile or careless client can do to ember's API, with seccomp on as it is by default:
// bodies of every size and framing, slow and idle connections by the hundred, pipelined requests,
// running out of file descriptors. Every case ends with ember alive and answering.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "core/base/unique_fd.h"
#include "tests/support/api_ember.h"

namespace ember::testing {
namespace {

UniqueFd raw_connect(const std::string& path) {
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) return {};
    return fd;
}

std::string put(const std::string& path, const std::string& body) {
    return "PUT " + path + " HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + body;
}

// A body of `size` bytes that the API refuses on its content, not its framing.
std::string padded(size_t size) {
    const std::string head = R"({"vcpu_count": 1, "mem_size_mib": 16, "pad": ")";
    return head + std::string(size - head.size() - 2, 'x') + "\"}";
}

void expect_alive(ApiEmber& ember) {
    auto c = ember.client();
    EXPECT_EQ(call(c, "GET", "/").status, 200) << ember.log();
    EXPECT_EQ(::waitpid(ember.pid, nullptr, WNOHANG), 0) << ember.log();
}

TEST(HostileClient, BodiesOfSomeKbUnderSeccompLeaveEmberServing) {
    ApiEmber ember;
    auto c = ember.client();
    // Each of these ended ember with its own seccomp filter (exit 148): freeing a large buffer
    // shrank the thread's heap, and glibc's first shrink opens a /proc file.
    for (size_t size : {6000, 12000, 30000, 50000, 12000, 30000})
        expect_fault(call(c, "PUT", "/machine-config", padded(size)), "pad");
    std::vector<std::thread> clients;
    for (int i = 0; i < 16; ++i)
        clients.emplace_back([&ember] {
            auto own = UdsHttpClient::connect(ember.sock);
            ASSERT_TRUE(own);
            for (int round = 0; round < 25; ++round)
                EXPECT_EQ(call(*own, "PUT", "/machine-config", padded(2000)).status, 400);
        });
    for (auto& t : clients) t.join();
    std::string nested(2000, '[');
    nested += std::string(2000, ']');
    expect_fault(call(c, "PUT", "/machine-config", "{\"a\": " + nested + "}"), "");
    // A 64 KB header line and a 100 KB URI are refused from their size.
    auto long_header = ember.client();
    ASSERT_TRUE(
        long_header.send_raw("GET / HTTP/1.1\r\nX-Long: " + std::string(65536, 'h') + "\r\n\r\n"));
    auto reply = long_header.read_reply();
    ASSERT_TRUE(reply) << reply.error().message;
    expect_fault(*reply, "Request head is larger than the limit");
    auto long_uri = ember.client();
    ASSERT_TRUE(long_uri.send_raw("GET /" + std::string(100000, 'u') + " HTTP/1.1\r\n\r\n"));
    reply = long_uri.read_reply();
    ASSERT_TRUE(reply) << reply.error().message;
    expect_fault(*reply, "Request head is larger than the limit");
    expect_alive(ember);
    // The heap trim's look-up was made at start, before any filter: no filter had to refuse it.
    EXPECT_EQ(count_lines_containing(ember.log(), "seccomp filter forbids"), 0) << ember.log();
}

TEST(HostileClient, AWholeBodyOverTheLimitGetsItsAnswerNotAReset) {
    ApiEmber ember;
    auto c = ember.client();
    ASSERT_TRUE(c.send_raw(put("/machine-config", padded(60000))));
    auto reply = c.read_reply();
    ASSERT_TRUE(reply) << reply.error().message;
    expect_fault(*reply, "Request payload with size 60000 is larger than the limit of 51200");
    expect_alive(ember);
}

TEST(HostileClient, AChunkedBodyIsBoundedAsItArrives) {
    ApiEmber ember;
    // Well-formed and small: served like a Content-Length body.
    auto small = ember.client();
    ASSERT_TRUE(
        small.send_raw("PUT /machine-config HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "10\r\n{\"vcpu_count\": 1\r\n15\r\n, \"mem_size_mib\": 16}\r\n0\r\n\r\n"));
    auto reply = small.read_reply();
    ASSERT_TRUE(reply) << reply.error().message;
    EXPECT_EQ(reply->status, 204) << reply->body;
    // Chunks past the limit: refused at the chunk that crosses it, the rest never held.
    auto big = ember.client();
    std::string chunks = "PUT /machine-config HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (int i = 0; i < 20; ++i) chunks += "1000\r\n" + std::string(4096, 'x') + "\r\n";
    ASSERT_TRUE(big.send_raw(chunks));
    reply = big.read_reply();
    ASSERT_TRUE(reply) << reply.error().message;
    expect_fault(*reply, "is larger than the limit of 51200");
    expect_alive(ember);
}

TEST(HostileClient, CompressedBodiesAreRefusedNotInflated) {
    ApiEmber ember;
    for (const char* encoding : {"gzip", "deflate", "br"}) {
        auto c = ember.client();
        ASSERT_TRUE(c.send_raw("PUT /machine-config HTTP/1.1\r\nContent-Encoding: " +
                               std::string(encoding) + "\r\nContent-Length: 4\r\n\r\nabcd"));
        auto reply = c.read_reply();
        ASSERT_TRUE(reply) << reply.error().message;
        expect_fault(*reply, "Content-Encoding " + std::string(encoding) + " is not supported.");
    }
    expect_alive(ember);
}

TEST(HostileClient, PipelinedRequestsAreAnsweredInOrder) {
    ApiEmber ember;
    auto c = ember.client();
    ASSERT_TRUE(c.send_raw("GET / HTTP/1.1\r\n\r\n" +
                           put("/machine-config", R"({"vcpu_count": 2, "mem_size_mib": 32})") +
                           "GET /machine-config HTTP/1.1\r\n\r\n" +
                           "GET /nowhere HTTP/1.1\r\n\r\n"));
    auto first = c.read_reply();
    auto second = c.read_reply();
    auto third = c.read_reply();
    auto fourth = c.read_reply();
    ASSERT_TRUE(first && second && third && fourth);
    EXPECT_EQ(first->status, 200);
    EXPECT_NE(first->body.find("\"app_name\":\"ember\""), std::string::npos) << first->body;
    EXPECT_EQ(second->status, 204);
    EXPECT_NE(third->body.find("\"vcpu_count\":2"), std::string::npos) << third->body;
    EXPECT_EQ(fourth->status, 400);
}

TEST(HostileClient, HundredsOfSlowAndIdleConnectionsDoNotKeepANewClientOut) {
    // More than the server keeps: the oldest give way to the newest.
    constexpr int kIdle = 300, kSlow = 300;
    rlimit files{};
    ::getrlimit(RLIMIT_NOFILE, &files);
    ASSERT_GE(files.rlim_cur, static_cast<rlim_t>(kIdle + kSlow + 64)) << "the test's own limit";
    ApiEmber ember;
    expect_alive(ember);
    std::vector<UniqueFd> hostile;
    for (int i = 0; i < kIdle; ++i) hostile.push_back(raw_connect(ember.sock));
    for (int i = 0; i < kSlow; ++i) {
        hostile.push_back(raw_connect(ember.sock));
        const std::string start = "PUT /machine-config HTTP/1.1\r\nContent-Length: 100\r\n\r\n{";
        ASSERT_EQ(::send(hostile.back().get(), start.data(), start.size(), MSG_NOSIGNAL),
                  static_cast<ssize_t>(start.size()));
    }
    auto c = ember.client();
    EXPECT_EQ(call(c, "GET", "/").status, 200) << ember.log();
    EXPECT_EQ(call(c, "PUT", "/machine-config", R"({"vcpu_count": 1, "mem_size_mib": 16})").status,
              204);
}

TEST(HostileClient, TheSocketFileAppearsOnlyOnceItAccepts) {
    // Clients that connect the moment the file appears: some were refused (ECONNREFUSED) when the
    // file was bound before it listened.
    for (int round = 0; round < 20; ++round) {
        TempDir dir;
        const std::string sock = dir.path() + "/api.sock";
        std::atomic<int> refused = 0;
        std::vector<std::thread> clients;
        for (int i = 0; i < 4; ++i)
            clients.emplace_back([&] {
                sockaddr_un addr{};
                addr.sun_family = AF_UNIX;
                std::strncpy(addr.sun_path, sock.c_str(), sizeof addr.sun_path - 1);
                const auto deadline = std::chrono::steady_clock::now() + kFailsafe;
                while (std::chrono::steady_clock::now() < deadline) {
                    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
                    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0)
                        return;
                    if (errno == ECONNREFUSED) {
                        ++refused;
                        return;
                    }
                }
            });
        const int devnull = ::open("/dev/null", O_RDWR);
        const pid_t pid = spawn({EMBER_BINARY, "--api-sock", sock}, devnull, devnull, devnull);
        ::close(devnull);
        for (auto& t : clients) t.join();
        ::kill(pid, SIGTERM);
        ::waitpid(pid, nullptr, 0);
        ASSERT_EQ(refused.load(), 0) << "round " << round;
        EXPECT_TRUE(std::filesystem::is_empty(dir.path())) << "no staging file is left behind";
    }
}

TEST(HostileClient, OutOfFileDescriptorsTheServerLogsAndGoesOn) {
    ApiEmber ember;
    expect_alive(ember);
    // Just above what ember has open now: a few connections exhaust it.
    int open_fds = 0;
    for (const auto& entry :
         std::filesystem::directory_iterator("/proc/" + std::to_string(ember.pid) + "/fd")) {
        (void)entry;
        ++open_fds;
    }
    // The soft limit only, so that it can be put back.
    rlimit before{};
    ASSERT_EQ(::prlimit(ember.pid, RLIMIT_NOFILE, nullptr, &before), 0) << std::strerror(errno);
    const rlimit tight{static_cast<rlim_t>(open_fds + 4), before.rlim_max};
    ASSERT_EQ(::prlimit(ember.pid, RLIMIT_NOFILE, &tight, nullptr), 0) << std::strerror(errno);
    std::vector<UniqueFd> held;
    for (int i = 0; i < 12; ++i) held.push_back(raw_connect(ember.sock));
    auto c = ember.client();
    EXPECT_EQ(call(c, "GET", "/").status, 200) << ember.log();
    EXPECT_GE(count_lines_containing(ember.log(), "accepting an API connection failed: Too many"),
              1)
        << ember.log();
    // UBSan's vptr check needs a pipe of its own to read memory safely: out of descriptors, it
    // reports ember's exit path as a bad object. The exit is not what this test is about.
    ASSERT_EQ(::prlimit(ember.pid, RLIMIT_NOFILE, &before, nullptr), 0) << std::strerror(errno);
    EXPECT_EQ(ember.stop(), 0) << ember.log();
}

}  // namespace
}  // namespace ember::testing
