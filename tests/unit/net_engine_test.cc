// The net engines (virtio/net/net_engine.h) over a datagram socket standing in for a tap, which
// can both refuse one frame (EMSGSIZE, as a tap refuses a runt with EINVAL) and run out of room
// (EAGAIN): a refused frame is that frame's error alone, while after EAGAIN nothing more is written
// until there is room.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <memory>
#include <string>
#include <vector>

#include "core/base/unique_fd.h"
#include "virtio/net/net_engine.h"

namespace ember::virtio {
namespace {

class NetEngineTest : public ::testing::TestWithParam<bool> {
  protected:
    void SetUp() override {
        int fds[2];
        ASSERT_EQ(::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
        // Small enough that a 64 KiB frame is refused whole.
        const int size = 16 << 10;
        ASSERT_EQ(::setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &size, sizeof size), 0);
        peer = UniqueFd(fds[1]);
        tap = std::make_unique<Tap>(Tap::from_socket(UniqueFd(fds[0]), "socket"));
        if (GetParam()) {
            auto uring = make_uring_net_engine(*tap);
            if (!uring) GTEST_SKIP() << "io_uring here: " << uring.error().message;
            engine = std::move(*uring);
        } else {
            engine = make_sync_net_engine(*tap);
        }
    }

    // Writes frames of these sizes, each filled with its index; the results.
    std::vector<int> write(const std::vector<size_t>& sizes) {
        frames.clear();
        for (size_t i = 0; i < sizes.size(); ++i) frames.emplace_back(sizes[i], char('a' + i % 26));
        iovs.resize(frames.size());
        std::vector<std::span<const iovec>> spans;
        for (size_t i = 0; i < frames.size(); ++i) {
            iovs[i] = iovec{frames[i].data(), frames[i].size()};
            spans.emplace_back(&iovs[i], 1);
        }
        std::vector<int> results(frames.size(), 1);
        EXPECT_EQ(engine->write(spans, results), 0);
        return results;
    }
    // The frames the peer received, in order.
    std::vector<std::string> received() {
        std::vector<std::string> out;
        std::string buf(1 << 17, '\0');
        for (;;) {
            const ssize_t n = ::recv(peer.get(), buf.data(), buf.size(), 0);
            if (n < 0) return out;
            out.push_back(buf.substr(0, static_cast<size_t>(n)));
        }
    }

    UniqueFd peer;
    std::unique_ptr<Tap> tap;
    std::unique_ptr<NetEngine> engine;
    std::vector<std::string> frames;
    std::vector<iovec> iovs;
};

TEST_P(NetEngineTest, ARefusedFrameDoesNotHoldBackTheFramesAfterIt) {
    const auto results = write({100, 64 << 10, 200, 64 << 10, 300});
    EXPECT_EQ(results, (std::vector<int>{0, -EMSGSIZE, 0, -EMSGSIZE, 0}));
    EXPECT_EQ(received(), (std::vector<std::string>{frames[0], frames[2], frames[4]}));
}

TEST_P(NetEngineTest, AfterEagainNothingMoreIsWrittenUntilThereIsRoom) {
    std::vector<size_t> sizes(2000, 1000);
    const auto results = write(sizes);
    size_t sent = 0;
    while (sent < results.size() && results[sent] == 0) ++sent;
    ASSERT_LT(sent, results.size()) << "the peer's queue never filled";
    EXPECT_EQ(results[sent], -EAGAIN);
    for (size_t i = sent + 1; i < results.size(); ++i) EXPECT_EQ(results[i], -ECANCELED) << i;
    EXPECT_EQ(received().size(), sent);
}

INSTANTIATE_TEST_SUITE_P(Engines, NetEngineTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "Async" : "Sync"; });

}  // namespace
}  // namespace ember::virtio
