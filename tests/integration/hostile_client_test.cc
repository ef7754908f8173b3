// What a hostile or careless client can do to ember's API, with seccomp on as it is by default:
// bodies of every size and framing, slow and idle connections by the hundred, pipelined requests,
// running out of file descriptors. Every case ends with ember alive and answering.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/base/unique_fd.h"
#include "tests/support/api_ember.h"
#include "tests/support/process_memory.h"
#include "tests/support/vcpu_threads.h"

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
    // file was bound before it listened. One CPU is left to ember: spinning clients on every CPU
    // made each start take seconds under emulation (tests/nested/run has two).
    const unsigned spinners = std::clamp(std::thread::hardware_concurrency(), 2u, 5u) - 1;
    for (int round = 0; round < 20; ++round) {
        TempDir dir;
        const std::string sock = dir.path() + "/api.sock";
        std::atomic<int> refused = 0;
        std::vector<std::thread> clients;
        for (unsigned i = 0; i < spinners; ++i)
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

// More pipelined requests than the server answers before its output bound: it used to answer what
// fitted, send it, and then wait for input that had already arrived (1,249 of 3,000 answered).
TEST(HostileClient, PipelinedRequestsPastTheOutputBoundAreAllAnswered) {
    ApiEmber ember;
    auto c = ember.client();
    constexpr int kGets = 3000;
    std::string batch;
    for (int i = 0; i < kGets; ++i) batch += "GET / HTTP/1.1\r\n\r\n";
    batch += put("/machine-config", R"({"vcpu_count": 2, "mem_size_mib": 32})");
    batch += "GET /machine-config HTTP/1.1\r\n\r\n";
    ASSERT_TRUE(c.send_raw(batch));
    for (int i = 0; i < kGets; ++i) {
        auto r = c.read_reply();
        ASSERT_TRUE(r) << "answer " << i << ": " << r.error().message;
        ASSERT_EQ(r->status, 200) << i;
    }
    auto put_reply = c.read_reply();
    ASSERT_TRUE(put_reply);
    EXPECT_EQ(put_reply->status, 204);
    auto config = c.read_reply();
    ASSERT_TRUE(config);
    EXPECT_NE(config->body.find("\"vcpu_count\":2"), std::string::npos) << config->body;
}

// RFC 9112 2.2: a bare LF ends a line as CRLF does. Such a request got no answer and its
// connection closed after 10 s.
TEST(HostileClient, BareLineFeedsEndLinesAsCrlfDoes) {
    ApiEmber ember;
    auto c = ember.client();
    ASSERT_TRUE(
        c.send_raw("GET / HTTP/1.1\nHost: localhost\n\n"
                   "PUT /machine-config HTTP/1.1\nContent-Length: 37\n\n"
                   R"({"vcpu_count": 2, "mem_size_mib": 32})"
                   "GET /machine-config HTTP/1.1\n\n"));
    auto first = c.read_reply();
    ASSERT_TRUE(first) << first.error().message;
    EXPECT_EQ(first->status, 200);
    auto second = c.read_reply();
    ASSERT_TRUE(second) << second.error().message;
    EXPECT_EQ(second->status, 204) << second->body;
    auto third = c.read_reply();
    ASSERT_TRUE(third) << third.error().message;
    EXPECT_NE(third->body.find("\"vcpu_count\":2"), std::string::npos) << third->body;
}

// A supervisor that stopped reading ember's stderr: every line was a blocking write, each request's
// body was logged whole, and two 20 KB bodies filled the pipe, after which the API thread never
// came back from write() and only SIGKILL ended ember.
TEST(HostileClient, AStderrNobodyReadsNeitherStallsTheApiNorKeepsSigtermOut) {
    TempDir dir;
    const std::string sock = dir.path() + "/api.sock";
    int err[2];
    ASSERT_EQ(::pipe2(err, O_CLOEXEC), 0);
    UniqueFd unread(err[0]);
    const int devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    const pid_t pid = spawn({EMBER_BINARY, "--api-sock", sock}, devnull, devnull, err[1]);
    ::close(devnull);
    ::close(err[1]);
    auto c = UdsHttpClient::connect(sock);
    ASSERT_TRUE(c) << c.error().message;
    for (int i = 0; i < 20; ++i) {
        auto r = c->request("PUT", "/machine-config", padded(20000));
        ASSERT_TRUE(r) << "request " << i << ": " << r.error().message;
        EXPECT_EQ(r->status, 400) << i;
    }
    auto r = c->request("GET", "/");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    expect_sigterm_ends_cleanly(pid);
    if (::testing::Test::HasFatalFailure()) return;
    // What the pipe took is whole lines, each in Firecracker's layout.
    std::string logged;
    char buf[65536];
    for (ssize_t n; (n = ::read(unread.get(), buf, sizeof buf)) > 0;)
        logged.append(buf, static_cast<size_t>(n));
    ASSERT_FALSE(logged.empty());
    EXPECT_EQ(logged.back(), '\n');
    std::istringstream lines(logged);
    for (std::string line; std::getline(lines, line);)
        EXPECT_NE(line.find(" [anonymous-instance:"), std::string::npos) << line.substr(0, 200);
}

// 500 clients that pipeline requests and never read their answers: each used to hold 64 KiB of
// input and 256 KiB of answers, 157 MB in all, and 32 MB stayed after they left.
TEST(HostileClient, HundredsOfClientsThatNeverReadCostLittleMemoryAndGiveItBack) {
    constexpr int kClients = 500;
    rlimit files{};
    ::getrlimit(RLIMIT_NOFILE, &files);
    ASSERT_GE(files.rlim_cur, static_cast<rlim_t>(kClients + 64)) << "the test's own limit";
    ApiEmber ember;
    expect_alive(ember);
    const uint64_t start = resident_bytes(ember.pid);
    std::string batch;
    while (batch.size() < 64 * 1024) batch += "GET /machine-config HTTP/1.1\r\n\r\n";
    std::vector<UniqueFd> hostile;
    for (int i = 0; i < kClients; ++i) {
        hostile.push_back(raw_connect(ember.sock));
        ASSERT_TRUE(hostile.back().valid()) << i;
        // As much as the socket takes now; the rest would wait for the server to read.
        (void)::send(hostile.back().get(), batch.data(), batch.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    // Measured once every hostile client has answers waiting for it: the server has taken each
    // connection in, served it until its output was full, and stopped reading it.
    std::vector<pollfd> waiting;
    for (const auto& fd : hostile) waiting.push_back({fd.get(), POLLIN, 0});
    const auto deadline = std::chrono::steady_clock::now() + kFailsafe;
    size_t answered = 0;
    while (answered < waiting.size() && std::chrono::steady_clock::now() < deadline) {
        ASSERT_GE(::poll(waiting.data(), waiting.size(), 100), 0);
        answered = static_cast<size_t>(std::ranges::count_if(
            waiting, [](const pollfd& p) { return (p.revents & POLLIN) != 0; }));
    }
    ASSERT_EQ(answered, waiting.size()) << "every client got answers";
    expect_alive(ember);
    const uint64_t crowded = resident_bytes(ember.pid);
    hostile.clear();
    for (int round = 0; round < 8; ++round) expect_alive(ember);
    const uint64_t after = resident_bytes(ember.pid);
    std::cout << "[ memory ] ember's RSS: " << start / 1024 << " KiB at start, " << crowded / 1024
              << " KiB with " << kClients << " clients that never read, " << after / 1024
              << " KiB once they left\n";
#if !defined(__SANITIZE_ADDRESS__)
    // AddressSanitizer's shadow and quarantine make RSS say nothing of ember's own buffers.
    EXPECT_LE(crowded, 32ull << 20);
    EXPECT_LE(after, start + (4ull << 20));
#endif
}

// A SIGSYS that another process sent (kill, sigqueue) carries no system call: it was taken for a
// refused file lookup, -EACCES went into the API thread's epoll_wait result, and its loop gave up
// for good, leaving ember running with no API.
TEST(HostileClient, ASigsysSentByAnotherProcessIsIgnored) {
    ApiEmber ember;
    expect_alive(ember);
    const std::vector<pid_t> api = threads_named(ember.pid, "ember_api");
    ASSERT_EQ(api.size(), 1u);
    for (int i = 0; i < 4; ++i) {
        siginfo_t info{};
        info.si_signo = SIGSYS;
        info.si_code = SI_QUEUE;
        info.si_pid = ::getpid();
        info.si_uid = ::getuid();
        ASSERT_EQ(::syscall(SYS_rt_tgsigqueueinfo, ember.pid, api[0], SIGSYS, &info), 0)
            << std::strerror(errno);
        expect_alive(ember);
    }
    // Each one was handled before the thread it interrupted served the next request.
    EXPECT_EQ(count_lines_containing(ember.log(), "ignored a SIGSYS sent by process"), 4)
        << ember.log();
    // A plain kill reaches whichever thread takes it.
    ASSERT_EQ(::kill(ember.pid, SIGSYS), 0);
    expect_alive(ember);
    EXPECT_EQ(ember.stop(), 0) << ember.log();
    EXPECT_EQ(count_lines_containing(ember.log(), "made system call"), 0) << ember.log();
}

}  // namespace
}  // namespace ember::testing
