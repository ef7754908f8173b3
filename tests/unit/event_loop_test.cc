#include <gtest/gtest.h>

#include "core/base/event_fd.h"
#include "core/event_loop/event_loop.h"

namespace ember {
namespace {

TEST(EventLoop, RunsHandlersUntilStopped) {
    auto loop = EventLoop::create();
    ASSERT_TRUE(loop);
    auto a = EventFd::create();
    auto b = EventFd::create();
    int a_calls = 0;
    ASSERT_TRUE(loop->add(a->fd(), EPOLLIN, [&](uint32_t) {
        a->consume();
        if (++a_calls == 3)
            loop->stop();
        else
            a->signal();
    }));
    // A handler may remove another (or itself) while the batch is being dispatched.
    ASSERT_TRUE(loop->add(b->fd(), EPOLLIN, [&](uint32_t) { loop->remove(b->fd()); }));
    a->signal();
    b->signal();
    ASSERT_TRUE(loop->run());
    EXPECT_EQ(a_calls, 3);
    EXPECT_FALSE(loop->add(-1, EPOLLIN, [](uint32_t) {}));
}

}  // namespace
}  // namespace ember
