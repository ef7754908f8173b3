// A virtio kind ember does not have, given to a VM by one line in its list of kinds: the tests'
// fill device (tests/support/fill_device) gets a slot and an interrupt line, a guest finds it and
// drives its queue over MMIO, the Vmm lists it by its kind and id, and a snapshot keeps it, to be
// restored where the kind is listed. Without the line, the guest finds nothing. Each VMM thread is
// confined by ember's default seccomp filters once its VM is built, as ember's Controller does, and
// the vCPU threads are confined from their start.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <thread>

#include "core/base/unique_fd.h"
#include "core/seccomp/filters.h"
#include "core/seccomp/install.h"
#include "tests/support/ember_process.h"
#include "tests/support/fill_device/fill_device.h"
#include "virtio/block/block_kind.h"
#include "virtio/net/net_kind.h"
#include "vmm/machine/vmm.h"

namespace ember::testing {
namespace {

constexpr uint64_t kGoAddr = 0x300000;  // the guest goes on past its first round once non-zero

const virtio::VirtioKind* const kWithFill[] = {&virtio::kBlockKind, &virtio::kNetKind, &kFillKind};

struct SerialPipe {
    SerialPipe() {
        int fds[2];
        EXPECT_EQ(::pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0);
        read_end = UniqueFd(fds[0]);
        write_end = UniqueFd(fds[1]);
    }
    const std::string& drain() {
        char buf[4096];
        for (ssize_t n; (n = ::read(read_end.get(), buf, sizeof buf)) > 0;) text.append(buf, n);
        return text;
    }
    UniqueFd read_end, write_end;
    std::string text;
};

const seccomp::ThreadFilters& filters() {
    static const auto compiled = [] {
        seccomp::install_sigsys_reporter();
        auto f = seccomp::compile_filters(seccomp::default_filters_json());
        if (!f) throw std::runtime_error(f.error().message);
        return std::move(*f);
    }();
    return compiled;
}

VmmOptions options(std::span<const virtio::VirtioKind* const> kinds, SerialPipe& serial,
                   EventLoop* loop = nullptr) {
    VmmOptions o;
    o.serial_out_fd = serial.write_end.get();
    o.vcpu_filter = &filters().vcpu;
    o.virtio_kinds = kinds;
    o.loop = loop;
    return o;
}

VmConfig fill_guest() {
    VmConfig config;
    config.boot_source =
        BootSourceConfig{std::string(EMBER_GUEST_DIR) + "/virtio_fill.elf", {}, {}};
    config.machine.mem_size_mib = 16;
    return config;
}

void confine_this_thread() {
    auto confined = seccomp::install(filters().vmm, seccomp::ThreadKind::Vmm);
    ASSERT_TRUE(confined) << confined.error().message;
}

// On a thread of its own, which seccomp confines for good.
void on_vmm_thread(const std::function<void()>& body) {
    std::thread(body).join();
}

std::vector<std::pair<std::string, std::string>> devices_of(const Vmm& vmm) {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto* device : vmm.virtio_devices())
        out.emplace_back(std::string(device->kind()), device->id());
    return out;
}

uint64_t chains_filled(const Vmm& vmm) {
    for (const auto* device : vmm.virtio_devices())
        if (const auto* fill = dynamic_cast<const FillDevice*>(device))
            return fill->chains_filled();
    return 0;
}

const std::pair<std::string, std::string> kFill0{"fill", "fill0"};

// With the fill device in place: lets the guest past its first round, runs it to its end on this
// thread (confined once the VM is started), and says how many chains the device filled meanwhile.
uint64_t run_to_the_end(Vmm& vmm) {
    EXPECT_EQ(devices_of(vmm), std::vector{kFill0});
    EXPECT_TRUE(vmm.memory().write_obj<uint64_t>(kGoAddr, 1));
    EXPECT_TRUE(vmm.start());
    confine_this_thread();
    auto status = vmm.run();
    EXPECT_EQ(status.reason, ExitReason::GuestReset) << status.describe();
    return chains_filled(vmm);
}

TEST(DeviceKind, AListedKindGetsADeviceTheGuestDrives) {
    SerialPipe serial;
    on_vmm_thread([&] {
        auto vmm = Vmm::create(*ValidVmConfig::check(fill_guest()), options(kWithFill, serial));
        ASSERT_TRUE(vmm) << vmm.error().message;
        EXPECT_EQ(run_to_the_end(**vmm), 3u);
    });
    EXPECT_NE(serial.drain().find("virtio-fill: round 3: 64 bytes of 0x5a"), std::string::npos)
        << serial.text;
}

// A kind that takes live updates needs nothing of vmm/, api/ or core/: its folder defines its
// update and its device applies it (virtio::UpdatableDevice); the Vmm hands it over by kind and
// id, and says so when no device has them. (A user reaches it through a route that parses its
// body from its fields.)
TEST(DeviceKind, AKindsOwnUpdateReachesItsDeviceByKindAndId) {
    SerialPipe serial;
    on_vmm_thread([&] {
        auto vmm = Vmm::create(*ValidVmConfig::check(fill_guest()), options(kWithFill, serial));
        ASSERT_TRUE(vmm) << vmm.error().message;
        const auto* fill = dynamic_cast<const FillDevice*>((*vmm)->virtio_devices()[0]);
        ASSERT_NE(fill, nullptr);
        ASSERT_TRUE((*vmm)->update_device(UpdateDevice{"fill", "fill0", FillUpdate{0xa5}}));
        EXPECT_EQ(fill->pattern(), 0xa5);

        auto refused = (*vmm)->update_device(UpdateDevice{"fill", "fill0", FillUpdate{0}});
        ASSERT_FALSE(refused);
        EXPECT_EQ(refused.error().message, "fill 'fill0': a pattern of 0 fills nothing");
        EXPECT_EQ(fill->pattern(), 0xa5) << "a refused update changes nothing";
        auto missing = (*vmm)->update_device(UpdateDevice{"fill", "fill1", FillUpdate{1}});
        ASSERT_FALSE(missing);
        EXPECT_EQ(missing.error().message, "fill device 'fill1': no such fill device");
        auto foreign = (*vmm)->update_device(UpdateDevice{"fill", "fill0", DriveUpdate{}});
        ASSERT_FALSE(foreign);
        EXPECT_EQ(foreign.error().message, "fill 'fill0': not an update of its kind");
    });
}

TEST(DeviceKind, WithoutItsLineTheGuestFindsNoDevice) {
    SerialPipe serial;
    on_vmm_thread([&] {
        auto vmm =
            Vmm::create(*ValidVmConfig::check(fill_guest()), options(virtio_kinds(), serial));
        ASSERT_TRUE(vmm) << vmm.error().message;
        EXPECT_TRUE(devices_of(**vmm).empty());
        ASSERT_TRUE((*vmm)->start());
        confine_this_thread();
        (*vmm)->run();
    });
    EXPECT_NE(serial.drain().find("virtio-fill: FAIL: no fill device"), std::string::npos)
        << serial.text;
}

TEST(DeviceKind, ASnapshotKeepsItsDeviceForAVmmThatListsTheKind) {
    TempDir dir;
    const std::string state = dir.path() + "/vm.state", memory = dir.path() + "/vm.mem";
    SerialPipe before;
    on_vmm_thread([&] {
        auto loop = EventLoop::create();
        ASSERT_TRUE(loop) << loop.error().message;
        auto vmm =
            Vmm::create(*ValidVmConfig::check(fill_guest()), options(kWithFill, before, &*loop));
        ASSERT_TRUE(vmm) << vmm.error().message;
        ASSERT_TRUE((*vmm)->start());
        confine_this_thread();
        const auto deadline = std::chrono::steady_clock::now() + kFailsafe;
        while (before.drain().find("round 1:") == std::string::npos) {
            ASSERT_LT(std::chrono::steady_clock::now(), deadline) << before.text;
            ASSERT_TRUE(loop->run_once(10));
        }
        ASSERT_TRUE((*vmm)->pause());
        auto saved = (*vmm)->save_snapshot(state, memory);
        ASSERT_TRUE(saved) << saved.error().message;
        // Nothing asked the VM to end: finish() still says why it did.
        EXPECT_EQ((*vmm)->finish().reason, ExitReason::Signal);
    });
    ASSERT_EQ(before.text.find("round 2:"), std::string::npos) << before.text;

    LoadSnapshot load;
    load.snapshot_path = state;
    load.mem_backend = MemBackend{MemBackendType::File, memory};
    SerialPipe refused;
    on_vmm_thread([&] {
        auto vmm = Vmm::restore(load, options(virtio_kinds(), refused));
        ASSERT_FALSE(vmm) << "a snapshot with a fill device restored where no kind makes one";
        EXPECT_NE(vmm.error().message.find("fill0"), std::string::npos) << vmm.error().message;
    });

    SerialPipe after;
    on_vmm_thread([&] {
        auto vmm = Vmm::restore(load, options(kWithFill, after));
        ASSERT_TRUE(vmm) << vmm.error().message;
        // Rounds 2 and 3, on the restored queue where round 1 left it.
        EXPECT_EQ(run_to_the_end(**vmm), 2u);
    });
    EXPECT_NE(after.drain().find("virtio-fill: round 3: 64 bytes of 0x5a"), std::string::npos)
        << after.text;
    EXPECT_EQ(after.text.find("FAIL"), std::string::npos) << after.text;
}

}  // namespace
}  // namespace ember::testing
