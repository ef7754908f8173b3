#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "vmm/devices/output_buffer.h"

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

}  // namespace
}  // namespace ember
