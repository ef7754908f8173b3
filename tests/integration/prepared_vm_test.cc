// The VM an ember makes while it waits on its API (vmm/machine/prepared_vm.h): there before any
// configuration, with its irqchip, PIT and vCPU 0 once the API has been quiet, the one the guest
// then runs on, booted or restored, with each guest seeing the CPUID of its own configuration;
// its guest memory taken by a VM of its size; and with --no-prepare-vm, nothing made before
// InstanceStart.
#include <dirent.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/api_ember.h"
#include "tests/support/uffd_handler.h"

namespace ember::testing {
namespace {

using namespace std::chrono_literals;

// How many of `pid`'s fds are the anonymous inode `name` ("kvm-vm", "kvm-vcpu:0").
int fds_of(pid_t pid, const std::string& name) {
    const std::string dir = "/proc/" + std::to_string(pid) + "/fd";
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return -1;
    int n = 0;
    for (dirent* e; (e = ::readdir(d)) != nullptr;) {
        char target[256] = {};
        const std::string link = dir + "/" + e->d_name;
        if (::readlink(link.c_str(), target, sizeof target - 1) > 0 &&
            std::string(target) == "anon_inode:" + name)
            ++n;
    }
    ::closedir(d);
    return n;
}

// Waits until `text()` holds `needle` `times` times (lines); false after kFailsafe.
template <typename Text>
bool shows(Text text, const std::string& needle, int times = 1) {
    const auto deadline = std::chrono::steady_clock::now() + kFailsafe;
    while (count_lines_containing(text(), needle) < times) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(20ms);
    }
    return true;
}

bool console_shows(const ApiEmber& e, const std::string& needle) {
    return shows([&] { return read_file(e.dir.path() + "/console"); }, needle);
}

constexpr const char* kReady = "a KVM VM is ready";

bool ready(const ApiEmber& e, int times = 1) {
    return shows([&] { return e.log(); }, kReady, times);
}

std::string machine(int vcpus) {
    return R"({"vcpu_count": )" + std::to_string(vcpus) + R"(, "mem_size_mib": 32})";
}

// A configuration call is answered by the VMM thread, which makes its VM before it takes any:
// once one is answered, the VM is there or never will be. Its platform and vCPU 0 come once the
// API has been quiet, which the log says.
TEST(PreparedVm, IsMadeBeforeAnyConfigurationAndIsTheVmTheGuestRunsOn) {
    ApiEmber e;
    auto c = e.api();
    ASSERT_EQ(call(c, "PUT", "/machine-config", machine(1)).status, 204);
    EXPECT_EQ(fds_of(e.pid, "kvm-vm"), 1) << e.log();
    ASSERT_TRUE(ready(e)) << e.log();
    EXPECT_EQ(fds_of(e.pid, "kvm-vm"), 1) << e.log();
    EXPECT_EQ(fds_of(e.pid, "kvm-vcpu:0"), 1);

    ASSERT_EQ(call(c, "PUT", "/boot-source", boot_source(guest("ticker"))).status, 204);
    ASSERT_EQ(call(c, "PUT", "/actions", R"({"action_type": "InstanceStart"})").status, 204);
    ASSERT_TRUE(console_shows(e, "tick 2 ok")) << e.log();
    EXPECT_EQ(fds_of(e.pid, "kvm-vm"), 1) << "a second VM was made";
    EXPECT_EQ(fds_of(e.pid, "kvm-vcpu:0"), 1);
}

TEST(PreparedVm, WithNoPrepareVmNothingIsMadeBeforeInstanceStart) {
    ApiEmber e({"--no-prepare-vm"});
    auto c = e.api();
    ASSERT_EQ(call(c, "PUT", "/machine-config", machine(1)).status, 204);
    EXPECT_EQ(fds_of(e.pid, "kvm-vm"), 0);
    EXPECT_EQ(count_lines_containing(e.log(), kReady), 0) << e.log();

    ASSERT_EQ(call(c, "PUT", "/boot-source", boot_source(guest("ticker"))).status, 204);
    ASSERT_EQ(call(c, "PUT", "/actions", R"({"action_type": "InstanceStart"})").status, 204);
    ASSERT_TRUE(console_shows(e, "tick 2 ok")) << e.log();
    EXPECT_EQ(fds_of(e.pid, "kvm-vm"), 1);
}

// A failed InstanceStart takes the VM made ahead with it; the next one gets a new one.
TEST(PreparedVm, AFailedInstanceStartLeavesAReadyVmForTheNext) {
    ApiEmber e;
    auto c = e.api();
    const std::string not_a_kernel = e.dir.write("not-a-kernel", "plain text, not an ELF\n");
    ASSERT_EQ(call(c, "PUT", "/machine-config", machine(1)).status, 204);
    ASSERT_EQ(call(c, "PUT", "/boot-source", boot_source(not_a_kernel)).status, 204);
    ASSERT_TRUE(ready(e)) << e.log();
    EXPECT_EQ(call(c, "PUT", "/actions", R"({"action_type": "InstanceStart"})").status, 400);
    EXPECT_EQ(fds_of(e.pid, "kvm-vm"), 1) << e.log();
    ASSERT_TRUE(ready(e, 2)) << e.log();
    EXPECT_EQ(fds_of(e.pid, "kvm-vcpu:0"), 1);

    ASSERT_EQ(call(c, "PUT", "/boot-source", boot_source(guest("ticker"))).status, 204);
    ASSERT_EQ(call(c, "PUT", "/actions", R"({"action_type": "InstanceStart"})").status, 204)
        << e.log();
    ASSERT_TRUE(console_shows(e, "tick 2 ok")) << e.log();
    EXPECT_EQ(fds_of(e.pid, "kvm-vm"), 1);
}

// vCPU 0 is made ahead with the CPUID of a one-vCPU VM; a VM of two must still tell its guest
// there are two (CPUID leaf 1, EBX bits 23:16), and vCPU 0 that it is APIC ID 0 (bits 31:24).
class PreparedVmCpuid : public ::testing::TestWithParam<std::tuple<int, bool>> {};

TEST_P(PreparedVmCpuid, TheGuestSeesItsOwnTopology) {
    const auto [vcpus, prepare] = GetParam();
    ApiEmber e(prepare ? std::vector<std::string>{} : std::vector<std::string>{"--no-prepare-vm"});
    auto c = e.api();
    if (prepare) {
        ASSERT_TRUE(ready(e)) << e.log();
    }
    ASSERT_EQ(call(c, "PUT", "/machine-config", machine(vcpus)).status, 204);
    ASSERT_EQ(call(c, "PUT", "/boot-source", boot_source(guest("cpuid_probe"))).status, 204);
    ASSERT_EQ(call(c, "PUT", "/actions", R"({"action_type": "InstanceStart"})").status, 204);
    // It prints, then resets the VM, which ends ember.
    ASSERT_EQ(e.wait(), 0) << e.log();
    const std::string out = read_file(e.dir.path() + "/console");
    const auto at = out.find("cpuid1 ebx=");
    ASSERT_NE(at, std::string::npos) << out;
    const uint64_t ebx = std::stoull(out.substr(at + 11, 18), nullptr, 16);
    EXPECT_EQ((ebx >> 16) & 0xff, static_cast<uint64_t>(vcpus)) << out;
    EXPECT_EQ(ebx >> 24, 0u) << out;
}

INSTANTIATE_TEST_SUITE_P(OneAndTwoVcpus, PreparedVmCpuid,
                         ::testing::Combine(::testing::Values(1, 2), ::testing::Bool()));

// A snapshot of a one-vCPU and of a two-vCPU guest each go on in a fresh ember, with the VM made
// ahead and without.
class PreparedVmRestore : public ::testing::TestWithParam<std::tuple<int, bool>> {};

TEST_P(PreparedVmRestore, ASnapshotGoesOnInIt) {
    const auto [vcpus, prepare] = GetParam();
    TempDir files;
    const std::string state = files.path() + "/vm.state", mem = files.path() + "/vm.mem";
    {
        ApiEmber source;
        auto c = source.api();
        ASSERT_EQ(call(c, "PUT", "/machine-config", machine(vcpus)).status, 204);
        ASSERT_EQ(call(c, "PUT", "/boot-source", boot_source(guest("ticker"))).status, 204);
        ASSERT_EQ(call(c, "PUT", "/actions", R"({"action_type": "InstanceStart"})").status, 204);
        ASSERT_TRUE(console_shows(source, "tick 2 ok")) << source.log();
        ASSERT_EQ(call(c, "PATCH", "/vm", R"({"state": "Paused"})").status, 204);
        ASSERT_EQ(call(c, "PUT", "/snapshot/create",
                       R"({"snapshot_path": ")" + state + R"(", "mem_file_path": ")" + mem + "\"}")
                      .status,
                  204);
    }
    ApiEmber clone(prepare ? std::vector<std::string>{}
                           : std::vector<std::string>{"--no-prepare-vm"});
    auto c = clone.api();
    if (prepare) {
        ASSERT_TRUE(ready(clone)) << clone.log();
    }
    auto loaded = call(c, "PUT", "/snapshot/load",
                       R"({"snapshot_path": ")" + state +
                           R"(", "mem_backend": {"backend_type": "File", "backend_path": ")" + mem +
                           R"("}, "resume_vm": true})");
    ASSERT_EQ(loaded.status, 204) << loaded.body << clone.log();
    // The clone's console starts empty: a line it completes is its own.
    ASSERT_TRUE(console_shows(clone, " ok")) << clone.log();
    EXPECT_EQ(fds_of(clone.pid, "kvm-vm"), 1);
    EXPECT_EQ(fds_of(clone.pid, "kvm-vcpu:" + std::to_string(vcpus - 1)), 1);
}

INSTANTIATE_TEST_SUITE_P(OneAndTwoVcpus, PreparedVmRestore,
                         ::testing::Combine(::testing::Values(1, 2), ::testing::Bool()));

// The guest memory made ahead (prepared_vm.h, PreparedVm::memory: 128 MiB in its KVM slot) is taken
// by a VM of that size, booted or restored, and its slot logs the guest's writes where the VM
// tracks dirty pages (a Diff snapshot reads KVM's dirty log, which a slot without the flag does not
// have), and a restore through a page-fault handler (Uffd) has its faults in that memory served; a
// VM of another size puts in a slot of its own.
class PreparedVmMemory : public ::testing::TestWithParam<std::tuple<int, bool, bool>> {};

constexpr const char* kSlotTaken = "in the KVM slot made ahead";

TEST_P(PreparedVmMemory, IsTakenByAVmOfItsSizeAndLeftForAnyOther) {
    const auto [mib, track, uffd] = GetParam();
    const int taken = mib == 128 ? 1 : 0;
    const std::string tracking = track ? "true" : "false";
    TempDir files;
    const std::string state = files.path() + "/vm.state", mem = files.path() + "/vm.mem";
    {
        ApiEmber source;
        auto c = source.api();
        ASSERT_TRUE(ready(source)) << source.log();
        ASSERT_EQ(call(c, "PUT", "/machine-config",
                       R"({"vcpu_count": 1, "mem_size_mib": )" + std::to_string(mib) +
                           R"(, "track_dirty_pages": )" + tracking + "}")
                      .status,
                  204);
        ASSERT_EQ(call(c, "PUT", "/boot-source", boot_source(guest("ticker"))).status, 204);
        ASSERT_EQ(call(c, "PUT", "/actions", R"({"action_type": "InstanceStart"})").status, 204)
            << source.log();
        ASSERT_TRUE(console_shows(source, "tick 2 ok")) << source.log();
        EXPECT_EQ(count_lines_containing(source.log(), kSlotTaken), taken) << source.log();
        ASSERT_EQ(call(c, "PATCH", "/vm", R"({"state": "Paused"})").status, 204);
        const auto full =
            call(c, "PUT", "/snapshot/create",
                 R"({"snapshot_path": ")" + state + R"(", "mem_file_path": ")" + mem + "\"}");
        ASSERT_EQ(full.status, 204) << full.body;
        if (track) {
            const auto diff =
                call(c, "PUT", "/snapshot/create",
                     R"({"snapshot_type": "Diff", "snapshot_path": ")" + files.path() +
                         R"(/diff.state", "mem_file_path": ")" + files.path() + "/diff.mem\"}");
            EXPECT_EQ(diff.status, 204) << diff.body << source.log();
        }
    }
    const std::string sock = files.path() + "/uffd.sock";
    std::optional<Handler> handler;
    if (uffd) {
        handler.emplace(files,
                        std::vector<std::string>{EMBER_UFFD, "--socket", sock, "--mem-file", mem});
        ASSERT_TRUE(wait_exists(sock)) << read_file(handler->err);
    }
    ApiEmber clone;
    auto c = clone.api();
    ASSERT_TRUE(ready(clone)) << clone.log();
    const std::string backend = uffd ? R"({"backend_type": "Uffd", "backend_path": ")" + sock
                                     : R"({"backend_type": "File", "backend_path": ")" + mem;
    auto loaded = call(c, "PUT", "/snapshot/load",
                       R"({"snapshot_path": ")" + state + R"(", "mem_backend": )" + backend +
                           R"("}, "track_dirty_pages": )" + tracking + R"(, "resume_vm": true})");
    ASSERT_EQ(loaded.status, 204) << loaded.body << clone.log();
    ASSERT_TRUE(console_shows(clone, " ok")) << clone.log();
    EXPECT_EQ(count_lines_containing(clone.log(), kSlotTaken), taken) << clone.log();
    if (track) {
        ASSERT_EQ(call(c, "PATCH", "/vm", R"({"state": "Paused"})").status, 204);
        const auto diff =
            call(c, "PUT", "/snapshot/create",
                 R"({"snapshot_type": "Diff", "snapshot_path": ")" + files.path() +
                     R"(/clone.state", "mem_file_path": ")" + files.path() + "/clone.mem\"}");
        EXPECT_EQ(diff.status, 204) << diff.body << clone.log();
    }
}

// --ready-memory-mib sizes it (a VM of that size takes it), and 0 makes none.
TEST(PreparedVm, ReadyMemoryMibSizesTheMemoryMadeAhead) {
    for (const auto& [flag, taken] : {std::pair{"32", 1}, std::pair{"0", 0}}) {
        ApiEmber e({"--ready-memory-mib", flag});
        auto c = e.api();
        ASSERT_TRUE(ready(e)) << e.log();
        ASSERT_EQ(call(c, "PUT", "/machine-config", machine(1)).status, 204);  // 32 MiB
        ASSERT_EQ(call(c, "PUT", "/boot-source", boot_source(guest("ticker"))).status, 204);
        ASSERT_EQ(call(c, "PUT", "/actions", R"({"action_type": "InstanceStart"})").status, 204)
            << e.log();
        ASSERT_TRUE(console_shows(e, "tick 2 ok")) << e.log();
        EXPECT_EQ(count_lines_containing(e.log(), kSlotTaken), taken) << flag << ": " << e.log();
        EXPECT_EQ(count_lines_containing(e.log(), "no guest memory made ahead"), 0) << e.log();
    }
}

INSTANTIATE_TEST_SUITE_P(
    SizesTrackingAndUffd, PreparedVmMemory,
    ::testing::Values(std::tuple{32, false, false}, std::tuple{32, true, false},
                      std::tuple{128, false, false}, std::tuple{128, true, false},
                      std::tuple{32, false, true}, std::tuple{128, false, true}));

}  // namespace
}  // namespace ember::testing
