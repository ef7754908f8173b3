// The pause/kick protocol, in process: a paused guest makes no progress and its registers can be
// read; a resumed one goes on from where it was.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <thread>

#include "tests/support/ember_process.h"
#include "vmm/machine/vmm.h"

namespace ember {
namespace {

using testing::kFailsafe;

using namespace std::chrono_literals;

constexpr uint64_t kCounterAddr = 0x300000;

uint64_t counter(const Vmm& vmm) {
    return *vmm.memory().read_obj<uint64_t>(kCounterAddr);
}

template <typename Pred>
bool wait_for(Pred pred, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        if (pred()) return true;
        std::this_thread::sleep_for(1ms);
    }
    return pred();
}

TEST(Pause, PausedGuestStopsAndResumedGuestContinues) {
    VmConfig config;
    config.boot_source = BootSourceConfig{std::string(EMBER_GUEST_DIR) + "/counter.elf", {}, {}};
    config.machine.mem_size_mib = 16;
    int devnull = ::open("/dev/null", O_WRONLY);
    VmmOptions options;
    options.serial_out_fd = devnull;
    auto vmm = Vmm::create(*ValidVmConfig::check(config), options);
    ASSERT_TRUE(vmm) << vmm.error().message;
    ASSERT_TRUE((*vmm)->start());
    std::thread vmm_thread([&] { (*vmm)->run(); });

    ASSERT_TRUE(wait_for([&] { return counter(**vmm) > 1000; }, kFailsafe))
        << "guest never started counting";
    // How long this host takes the running guest to count 1000: a paused guest must not move in
    // that long. Measured, so a slow host (nested, emulated) waits longer rather than passing
    // because the guest would not have moved anyway.
    auto t0 = std::chrono::steady_clock::now();
    uint64_t c0 = counter(**vmm);
    ASSERT_TRUE(wait_for([&] { return counter(**vmm) > c0 + 1000; }, kFailsafe));
    const auto window = std::chrono::steady_clock::now() - t0;
    for (int round = 0; round < 3; ++round) {
        ASSERT_TRUE((*vmm)->pause());
        EXPECT_EQ((*vmm)->state(), VmState::Paused);
        uint64_t at_pause = counter(**vmm);
        auto regs = (*vmm)->vcpus()[0]->vcpu().get_regs();
        ASSERT_TRUE(regs) << regs.error().message;
        EXPECT_GE(regs->rip, 0x100000u);  // inside the guest image
        std::this_thread::sleep_for(window);
        EXPECT_EQ(counter(**vmm), at_pause) << "guest ran while paused";
        auto regs_again = (*vmm)->vcpus()[0]->vcpu().get_regs();
        EXPECT_EQ(regs_again->rip, regs->rip);
        EXPECT_EQ(regs_again->rax, regs->rax);

        (*vmm)->resume();
        EXPECT_EQ((*vmm)->state(), VmState::Running);
        EXPECT_TRUE(wait_for([&] { return counter(**vmm) > at_pause + 1000; }, kFailsafe))
            << "guest did not resume";
    }

    (*vmm)->request_exit(ExitReason::Signal, "test");
    vmm_thread.join();
    EXPECT_EQ((*vmm)->state(), VmState::Exited);
    ::close(devnull);
}

// A `rep movsl` from MMIO exits once per register. KVM completes each register inside the next
// KVM_RUN, and that completion may set up the next register's exit at once, even with
// immediate_exit set. A vCPU pausing there must serve that exit before it stops: otherwise, once
// resumed, the guest gets the previous register's value in its place.
TEST(Pause, AStringCopyFromMmioCutByPausesGetsEveryRegister) {
    testing::TempDir dir;
    VmConfig config;
    config.boot_source = BootSourceConfig{std::string(EMBER_GUEST_DIR) + "/mmio_rep.elf", {}, {}};
    config.machine.mem_size_mib = 16;
    DriveConfig drive;
    drive.drive_id = "data";
    drive.path_on_host = dir.write("disk.img", std::string(1 << 20, '\0'));
    config.drives.push_back(drive);
    const std::string console = dir.path() + "/console";
    int out = ::open(console.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ASSERT_GE(out, 0);
    VmmOptions options;
    options.serial_out_fd = out;
    auto vmm = Vmm::create(*ValidVmConfig::check(config), options);
    ASSERT_TRUE(vmm) << vmm.error().message;
    ASSERT_TRUE((*vmm)->start());
    std::thread vmm_thread([&] { (*vmm)->run(); });
    auto copied_past = [&](uint64_t n) {
        return [&, n] { return counter(**vmm) > n || (*vmm)->state() == VmState::Exited; };
    };

    ASSERT_TRUE(wait_for(copied_past(10), kFailsafe)) << "the guest never copied";
    // Three of every four exits the guest makes leave another one pending, so most of these
    // pauses land on one.
    int rounds = 0;
    for (; rounds < 40 && (*vmm)->state() != VmState::Exited; ++rounds) {
        ASSERT_TRUE((*vmm)->pause());
        uint64_t at_pause = counter(**vmm);
        (*vmm)->resume();
        ASSERT_TRUE(wait_for(copied_past(at_pause + 2), kFailsafe)) << "the guest did not go on";
    }
    EXPECT_EQ(rounds, 40);
    EXPECT_EQ(testing::read_file(console), "copying\n");
    EXPECT_NE((*vmm)->state(), VmState::Exited) << "the guest found a bad copy and reset";

    (*vmm)->request_exit(ExitReason::Signal, "test");
    vmm_thread.join();
    ::close(out);
}

}  // namespace
}  // namespace ember
