// The Controller without a VM: stop() from another thread ends run(), which sleeps in epoll.
#include "vmm/app/controller.h"

#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <future>
#include <thread>

#include "tests/support/ember_process.h"

namespace ember {
namespace {

TEST(Controller, StopFromAnotherThreadWakesTheVmmThread) {
    auto controller = Controller::create({});
    ASSERT_TRUE(controller) << controller.error().message;
    std::atomic<pid_t> vmm_thread{0};
    auto ran = std::async(std::launch::async, [&] {
        vmm_thread = static_cast<pid_t>(::syscall(SYS_gettid));
        return (*controller)->run();
    });
    // Until the VMM thread sleeps in epoll_wait: a stop must wake it, not wait for an event.
    auto sleeping = [&] {
        if (vmm_thread == 0) return false;
        std::ifstream f("/proc/self/task/" + std::to_string(vmm_thread.load()) + "/syscall");
        std::string number;
        f >> number;
        return number == std::to_string(SYS_epoll_wait) ||
               number == std::to_string(SYS_epoll_pwait);
    };
    while (!sleeping()) std::this_thread::yield();
    (*controller)->stop("the API server failed");
    ASSERT_EQ(ran.wait_for(testing::kFailsafe), std::future_status::ready)
        << "run() slept on after stop()";
    EXPECT_EQ(ran.get().describe(), "stopped by the API server failed");
    EXPECT_EQ((*controller)->state(), VmState::Exited);
    auto late = (*controller)->submit(FlushMetrics{});
    EXPECT_FALSE(late);
}

}  // namespace
}  // namespace ember
