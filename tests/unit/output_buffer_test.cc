#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <future>
#include <string>
#include <thread>

#include "tests/support/ember_process.h"

#include "core/devices/output_buffer.h"

namespace ember {
namespace {

std::span<const uint8_t> bytes(const std::string& s) {
    return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

TEST(OutputBuffer, KeepsOrderAndSignalsWhenItStopsBeingEmpty) {
    OutputBuffer buf(16, *EventFd::create());
    buf.push(bytes("abc"));
    buf.push(bytes("def"));
    EXPECT_EQ(buf.ready_fd() >= 0, true);
    uint64_t signalled = 0;
    ASSERT_EQ(::read(buf.ready_fd(), &signalled, 8), 8);
    EXPECT_EQ(signalled, 1u) << "only the empty -> non-empty push signals";
    auto all = buf.take_all();
    EXPECT_EQ(std::string(all.begin(), all.end()), "abcdef");
}

TEST(OutputBuffer, DropsAndCountsWhatDoesNotFit) {
    OutputBuffer buf(8, *EventFd::create());
    buf.push(bytes("0123456789"));
    EXPECT_EQ(buf.dropped(), 2u);
    auto all = buf.take_all();
    EXPECT_EQ(std::string(all.begin(), all.end()), "01234567");
    buf.push(bytes("xy"));  // room again after draining
    EXPECT_EQ(buf.dropped(), 2u);
}

TEST(OutputBuffer, DrainReportsBlockedOnAFullPipeAndResumesLater) {
    int fds[2];
    ASSERT_EQ(::pipe2(fds, O_NONBLOCK), 0);
    ::fcntl(fds[1], F_SETPIPE_SZ, 4096);
    OutputBuffer buf(8192, *EventFd::create());
    std::string data(6000, 'q');
    buf.push(bytes(data));
    auto first = buf.drain_to(fds[1]);
    ASSERT_TRUE(first);
    EXPECT_EQ(*first, OutputBuffer::Drain::Blocked);
    std::string received(8192, '\0');
    ssize_t n = ::read(fds[0], received.data(), received.size());
    auto second = buf.drain_to(fds[1]);
    ASSERT_TRUE(second);
    EXPECT_EQ(*second, OutputBuffer::Drain::Empty);
    ssize_t m = ::read(fds[0], received.data() + n, received.size() - static_cast<size_t>(n));
    EXPECT_EQ(n + m, 6000);
    ::close(fds[0]);
    ::close(fds[1]);
}

TEST(OutputBuffer, APushDoesNotWaitForASlowConsole) {
    OutputBuffer buf(1 << 18, *EventFd::create());  // more than the pipe holds
    int p[2];
    ASSERT_EQ(::pipe(p), 0);  // blocking: a console that has stopped reading
    const size_t pipe_size = static_cast<size_t>(::fcntl(p[1], F_GETPIPE_SZ));
    buf.push(bytes(std::string(pipe_size + 100, 'x')));
    std::atomic<pid_t> drainer{0};
    std::thread drain([&] {
        drainer = static_cast<pid_t>(::syscall(SYS_gettid));
        (void)buf.drain_to(p[1]);
    });
    // Until the drainer sits blocked in write(2) (syscall 1) on the full pipe.
    auto in_write = [&] {
        if (drainer == 0) return false;
        std::ifstream syscall("/proc/self/task/" + std::to_string(drainer.load()) + "/syscall");
        std::string number;
        syscall >> number;
        return number == std::to_string(SYS_write);
    };
    while (!in_write()) std::this_thread::yield();
    auto pushed = std::async(std::launch::async, [&] { buf.push(bytes("from a vCPU")); });
    EXPECT_EQ(pushed.wait_for(testing::kFailsafe), std::future_status::ready)
        << "push waited for the console";
    std::string sink(pipe_size * 2, '\0');
    size_t got = 0;
    while (got < pipe_size + 100) {
        ssize_t n = ::read(p[0], sink.data(), sink.size());
        ASSERT_GT(n, 0);
        got += static_cast<size_t>(n);
    }
    drain.join();
    (void)buf.drain_to(p[1]);  // whatever the drainer had not written yet
    ::fcntl(p[0], F_SETFL, O_NONBLOCK);
    for (ssize_t n; (n = ::read(p[0], sink.data(), sink.size())) > 0;)
        got += static_cast<size_t>(n);
    EXPECT_EQ(got, pipe_size + 100 + 11);
    ::close(p[0]);
    ::close(p[1]);
}

// Two threads draining at once (the VMM thread's loop, and a thread that pauses the VM) must
// neither write a byte twice nor lose count of what is queued: once they did both, and a
// drainer whose count had wrapped below zero wrote stale bytes for ever, filling the disk.
TEST(OutputBuffer, TwoDrainersTakeTurnsAndWriteEveryByteOnce) {
    int p[2];
    ASSERT_EQ(::pipe2(p, O_NONBLOCK), 0);
    OutputBuffer buf(1 << 20, *EventFd::create());  // room for everything: nothing is dropped
    std::string expected;
    for (int i = 0; i < 3000; ++i) expected += "line " + std::to_string(i) + "\n";
    std::atomic<bool> pushed{false};
    std::thread pusher([&] {
        for (size_t at = 0; at < expected.size(); at += 7) buf.push(bytes(expected.substr(at, 7)));
        pushed = true;
    });
    const auto deadline = std::chrono::steady_clock::now() + testing::kFailsafe;
    auto drainer = [&] {
        while (std::chrono::steady_clock::now() < deadline) {
            // Read before the drain: an Empty means everything only if the pusher had finished
            // before it. Read after, a push between the two was left behind by both drainers.
            const bool all_pushed = pushed;
            auto r = buf.drain_to(p[1]);
            if (!r) return;
            if (all_pushed && *r == OutputBuffer::Drain::Empty) return;
        }
    };
    std::thread a(drainer), b(drainer);
    std::string got;
    char chunk[4096];
    while (got.size() <= expected.size() && std::chrono::steady_clock::now() < deadline) {
        pollfd readable{p[0], POLLIN, 0};
        if (::poll(&readable, 1, 100) <= 0) {
            if (pushed && got.size() == expected.size()) break;
            continue;
        }
        const ssize_t n = ::read(p[0], chunk, sizeof chunk);
        if (n > 0) got.append(chunk, static_cast<size_t>(n));
    }
    pusher.join();
    a.join();
    b.join();
    for (ssize_t n; (n = ::read(p[0], chunk, sizeof chunk)) > 0;)
        got.append(chunk, static_cast<size_t>(n));
    EXPECT_EQ(buf.dropped(), 0u);
    EXPECT_EQ(got.size(), expected.size());
    EXPECT_TRUE(got == expected) << "bytes repeated or out of order";
    ::close(p[0]);
    ::close(p[1]);
}

}  // namespace
}  // namespace ember
