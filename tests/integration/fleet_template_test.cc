// ember-cpu as a host agent uses it across a fleet: this host's dump and an older host's (this one
// less a feature and a leaf) intersected into a template, the template verified here, and a guest
// booted under it given only what both hosts have; a template this host cannot give is refused by
// name, and a template is not taken for a dump.
#include <gtest/gtest.h>

#include <string>

#include "api/json/cpu_config_json.h"
#include "tests/support/api_ember.h"
#include "tests/support/ember_process.h"
#include "tests/support/probed_value.h"
#include "tests/support/snapshot_ember.h"

namespace ember::testing {
namespace {

// A dump's value of the register (every bit given, so the bitmap's value is the register's).
uint64_t& register_in(CpuTemplate& t, uint32_t leaf, CpuidRegister reg) {
    for (auto& m : t.cpuid_modifiers)
        if (m.leaf == leaf && m.subleaf == 0)
            for (auto& r : m.modifiers)
                if (r.reg == reg) return r.bitmap.value;
    ADD_FAILURE() << "no leaf " << leaf;
    static uint64_t none;
    return none;
}

TEST(FleetTemplate, TwoHostsDumpsGiveATemplateBothCanRunAndTheGuestSeesTheirIntersection) {
    TempDir dir;
    auto dumped = run_process({EMBER_CPU, "dump"}, kFailsafe);
    ASSERT_EQ(dumped.exit_code, 0) << dumped.err;
    auto here = json::parse_cpu_config(dumped.out);
    ASSERT_TRUE(here) << here.error().message;

    // The older host: the highest leaf-1 ECX feature this one has (not OSXSAVE, TSC-deadline or
    // the hypervisor bit, which are not features a host offers), and one basic leaf fewer.
    CpuTemplate older = *here;
    uint64_t& ecx = register_in(older, 1, CpuidRegister::Ecx);
    const uint32_t features = static_cast<uint32_t>(ecx) & ~((1u << 24) | (1u << 27) | (1u << 31));
    ASSERT_NE(features, 0u) << "this host offers no leaf-1 ECX feature";
    const uint32_t gone = 1u << (31 - __builtin_clz(features));
    ecx &= ~uint64_t{gone};
    uint64_t& max_leaf = register_in(older, 0, CpuidRegister::Eax);
    ASSERT_GT(max_leaf, 1u);
    const uint64_t older_max = --max_leaf;

    const std::string a = dir.write("a.json", dumped.out);
    const std::string b = dir.write("b.json", json::to_json(older));
    auto intersected = run_process({EMBER_CPU, "intersect", a, b}, kFailsafe);
    ASSERT_EQ(intersected.exit_code, 0) << intersected.err;
    const std::string fleet = dir.write("fleet.json", intersected.out);

    auto verified = run_process({EMBER_CPU, "verify", fleet}, kFailsafe);
    EXPECT_EQ(verified.exit_code, 0) << verified.out << verified.err;
    EXPECT_NE(verified.out.find(": a guest under " + fleet + " fits"), std::string::npos)
        << verified.out;

    const std::string config =
        dir.write("vm.json", R"({"boot-source": {"kernel_image_path": ")" + guest("cpuid_probe") +
                                 R"("}, "machine-config": {"vcpu_count": 1, "mem_size_mib": 32},
                          "cpu-config": ")" +
                                 fleet + "\"}");
    auto r = run_process({EMBER_BINARY, "--no-api", "--config-file", config}, kFailsafe);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const uint64_t guest_ecx = printed(r.out, "cpuid1 ", "ecx=");
    ASSERT_NE(guest_ecx, ~uint64_t{0}) << r.out;
    EXPECT_EQ(guest_ecx & gone, 0u) << r.out;
    EXPECT_NE(guest_ecx & (features & ~gone), 0u) << "every other feature was kept\n" << r.out;
    EXPECT_EQ(printed(r.out, "cpuid0 ", "max="), older_max) << r.out;
}

TEST(FleetTemplate, WhatThisHostCannotGiveIsRefusedByNameAndATemplateIsNoDump) {
    TempDir dir;
    // Bit 14 of 0x80000001 ECX is reserved: no host offers it.
    const std::string reserved = dir.write("reserved.json", R"({"cpuid_modifiers": [
        {"leaf": "0x80000001", "subleaf": "0x0", "flags": 0,
         "modifiers": [{"register": "ecx", "bitmap": "0b1_xxxx_xxxx_xxxx_xx"}]}]})");
    auto r = run_process({EMBER_CPU, "verify", reserved}, kFailsafe);
    EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
    EXPECT_NE(r.out.find("cannot boot a guest under " + reserved +
                         ": it gives cpuid 0x80000001.0 ecx bit 14, which this host lacks"),
              std::string::npos)
        << r.out;

    const std::string no_leaf = dir.write("no_leaf.json", R"({"cpuid_modifiers": [
        {"leaf": "0x4fffffff", "subleaf": "0x0", "flags": 0, "modifiers": []}]})");
    r = run_process({EMBER_CPU, "verify", no_leaf}, kFailsafe);
    EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
    EXPECT_NE(r.out.find("Template changes a CPUID entry not supported by KVM: Leaf: 0x4fffffff"),
              std::string::npos)
        << r.out;

    r = run_process({EMBER_CPU, "intersect", reserved}, kFailsafe);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.err,
              "ember-cpu: dump 1: leaf 0x80000001, subleaf 0x0, ecx keeps bits (x): not a dump, "
              "which gives every bit\n");
    r = run_process({EMBER_CPU, "verify", dir.path() + "/none.json"}, kFailsafe);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("none.json: No such file or directory"), std::string::npos) << r.err;
    r = run_process({EMBER_CPU, "merge"}, kFailsafe);
    EXPECT_EQ(r.exit_code, 2);
}

// The saved MSRs of a state file, as ember-snapshot-info lists them.
std::string saved_msrs(const std::string& state) {
    auto info = run_process({EMBER_SNAPSHOT_INFO, state}, kFailsafe);
    EXPECT_EQ(info.exit_code, 0) << info.err;
    const auto at = info.out.find("  MSRs:");
    return at == std::string::npos ? "" : info.out.substr(at, info.out.find('\n', at) - at) + " ";
}

// A snapshot knows the template its guest was booted under, and so does every snapshot of a VM
// restored from it; it saves the MSRs that template set, and of the rest only those that hold the
// guest's state: not the host's microcode revision (0x8b), which the next host's KVM gives.
TEST_F(Snapshot, ATemplateAndItsMsrsTravelWithTheSnapshotsOfItsGuest) {
    snapshot_a_ticking_guest();
    const std::string plain = saved_msrs(state);
    EXPECT_NE(plain.find(" 0x10 "), std::string::npos) << plain;
    EXPECT_NE(plain.find(" 0x277 "), std::string::npos) << plain;
    EXPECT_EQ(plain.find(" 0x8b "), std::string::npos) << plain;
    EXPECT_EQ(plain.find(" 0x10a "), std::string::npos) << plain;
    auto info = run_process({EMBER_SNAPSHOT_INFO, state}, kFailsafe);
    EXPECT_EQ(info.out.find("CPU template"), std::string::npos) << info.out;

    // ARCH_CAPABILITIES kept as KVM gives it ("0b"), yet named by the template.
    Ember a;
    ASSERT_TRUE(configure(a, "ticker.elf"));
    auto put =
        a.call("PUT", "/cpu-config", R"({"msr_modifiers": [{"addr": "0x10a", "bitmap": "0b"}],
        "cpuid_modifiers": [{"leaf": "0x1", "subleaf": "0x0", "flags": 0,
                             "modifiers": [{"register": "ecx", "bitmap": "0b0"}]}]})");
    ASSERT_EQ(put.status, 204) << put.body;
    ASSERT_EQ(a.call("PUT", "/actions", R"({"action_type": "InstanceStart"})").status, 204);
    ASSERT_TRUE(a.wait_for("tick 2 ok")) << a.output();
    ASSERT_EQ(a.call("PATCH", "/vm", R"({"state": "Paused"})").status, 204);
    ASSERT_EQ(a.call("PUT", "/snapshot/create", create_body()).status, 204);
    a.kill(SIGKILL);
    const std::string told =
        "CPU template: custom, 1 CPUID leaves and 1 MSRs it sets, 0 KVM "
        "capabilities";
    info = run_process({EMBER_SNAPSHOT_INFO, state}, kFailsafe);
    EXPECT_NE(info.out.find(told), std::string::npos) << info.out;
    EXPECT_NE(saved_msrs(state).find(" 0x10a "), std::string::npos) << saved_msrs(state);

    Ember b;
    auto loaded = b.call("PUT", "/snapshot/load", load_body(true, state, mem));
    ASSERT_EQ(loaded.status, 204) << loaded.body;
    // The restored guest ticks on from wherever it was paused.
    ASSERT_TRUE(b.wait_until([](const std::string& out) { return lines_in(out) >= 1; }))
        << b.output();
    ASSERT_EQ(b.call("PATCH", "/vm", R"({"state": "Paused"})").status, 204);
    const std::string again = files.path() + "/again.state",
                      again_mem = files.path() + "/again.mem";
    auto created =
        b.call("PUT", "/snapshot/create",
               R"({"snapshot_path": ")" + again + R"(", "mem_file_path": ")" + again_mem + "\"}");
    ASSERT_EQ(created.status, 204) << created.body;
    info = run_process({EMBER_SNAPSHOT_INFO, again}, kFailsafe);
    EXPECT_NE(info.out.find(told), std::string::npos) << info.out;
    EXPECT_NE(saved_msrs(again).find(" 0x10a "), std::string::npos) << saved_msrs(again);
}

}  // namespace
}  // namespace ember::testing
