// A custom CPU template (PUT /cpu-config, Firecracker's language) as a booted guest sees it: its
// CPUID bits set and cleared over the host's, its MSR bitmaps over KVM's reset values with ember's
// boot MSRs winning where both set one (as Firecracker's boot protocol does), a KVM capability the
// host lacks or a leaf KVM does not offer failing InstanceStart by name, a static template given
// later replacing it, and no template taken once the VM runs.
#include <gtest/gtest.h>

#include <string>

#include "tests/support/api_ember.h"
#include "tests/support/ember_process.h"
#include "tests/support/probed_value.h"

namespace ember::testing {
namespace {

constexpr const char* kMachine = R"({"vcpu_count": 1, "mem_size_mib": 32})";

// Boots cpuid_probe, with `cpu_config` first unless empty; its console.
std::string probe(const std::string& cpu_config) {
    ApiEmber e;
    auto c = e.api();
    EXPECT_EQ(call(c, "PUT", "/machine-config", kMachine).status, 204);
    if (!cpu_config.empty()) {
        auto put = call(c, "PUT", "/cpu-config", cpu_config);
        EXPECT_EQ(put.status, 204) << put.body;
    }
    EXPECT_EQ(call(c, "PUT", "/boot-source", boot_source(guest("cpuid_probe"))).status, 204);
    EXPECT_EQ(call(c, "PUT", "/actions", R"({"action_type": "InstanceStart"})").status, 204);
    // It prints, then resets the VM, which ends ember.
    EXPECT_EQ(e.wait(), 0) << e.log();
    return read_file(e.dir.path() + "/console");
}

// Leaf 1 ECX: MONITOR (bit 3) set and CX16 (bit 13) cleared, whatever the host offers. PAT's low
// byte set to 7 (UC-), the rest kept. SYSENTER_CS asked for too, but ember's boot protocol sets it
// (to 0) after the template, as Firecracker's does.
constexpr const char* kTemplate = R"({
  "kvm_capabilities": ["!56"],
  "cpuid_modifiers": [
    {"leaf": "0x1", "subleaf": "0x0", "flags": 0,
     "modifiers": [{"register": "ecx", "bitmap": "0bxxxxxxxxxxxxxxxxxx0x_xxxx_xxxx_1xxx"}]}
  ],
  "msr_modifiers": [
    {"addr": "0x277", "bitmap": "0b0000_0111"},
    {"addr": "0x174", "bitmap": "0b0001_0010_0011_0100"}
  ]
})";

TEST(CpuTemplate, TheGuestBootsWithTheTemplatesCpuidAndMsrs) {
    const std::string plain = probe("");
    const uint64_t host_ecx = printed(plain, "cpuid1 ", "ecx=");
    const uint64_t host_pat = printed(plain, "msr174=", "msr277=");
    ASSERT_NE(host_ecx, ~uint64_t{0}) << plain;
    ASSERT_NE(host_pat, ~uint64_t{0}) << plain;
    const uint64_t want_ecx = (host_ecx | (1u << 3)) & ~uint64_t{1u << 13};
    const uint64_t want_pat = (host_pat & ~uint64_t{0xff}) | 0x07;
    ASSERT_TRUE(want_ecx != host_ecx || want_pat != host_pat)
        << "the template would change nothing";

    const std::string out = probe(kTemplate);
    EXPECT_EQ(printed(out, "cpuid1 ", "ecx="), want_ecx) << plain << out;
    EXPECT_EQ(printed(out, "msr174=", "msr277="), want_pat) << out;
    EXPECT_EQ(printed(out, "msr174=", "msr174="), 0u) << "the boot protocol's value wins\n" << out;
}

// Firecracker v1.7's config file gives the template as a file's path: the same guest CPU as PUT
// /cpu-config gives, and a file that is not there fails the start by its path.
TEST(CpuTemplate, AConfigFilesCpuConfigIsTheTemplatesPath) {
    const std::string plain = probe("");
    const uint64_t host_ecx = printed(plain, "cpuid1 ", "ecx=");
    ASSERT_NE(host_ecx, ~uint64_t{0}) << plain;

    TempDir dir;
    auto config = [&](const std::string& template_path) {
        return dir.write("vm.json", R"({"boot-source": {"kernel_image_path": ")" +
                                        guest("cpuid_probe") + R"("}, "machine-config": )" +
                                        kMachine + R"(, "cpu-config": ")" + template_path + "\"}");
    };
    const std::string from_file = dir.write("template.json", kTemplate);
    auto r = run_process({EMBER_BINARY, "--no-api", "--config-file", config(from_file)}, kFailsafe);
    ASSERT_FALSE(r.timed_out) << r.err;
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(printed(r.out, "cpuid1 ", "ecx="), (host_ecx | (1u << 3)) & ~uint64_t{1u << 13})
        << plain << r.out;

    const std::string missing = dir.path() + "/no-such-template.json";
    auto refused =
        run_process({EMBER_BINARY, "--no-api", "--config-file", config(missing)}, kFailsafe);
    EXPECT_EQ(refused.exit_code, 1) << refused.err;
    EXPECT_EQ(count_lines_containing(refused.err, "cpu-config: " + missing + ": "), 1)
        << refused.err;
}

TEST(CpuTemplate, WhatTheHostLacksFailsTheBootByNameAndALaterStaticTemplateReplacesIt) {
    ApiEmber e;
    auto c = e.api();
    ASSERT_EQ(call(c, "PUT", "/machine-config", kMachine).status, 204);
    ASSERT_EQ(call(c, "PUT", "/boot-source", boot_source(guest("ticker"))).status, 204);
    for (const auto& [cpu_config, says] :
         std::initializer_list<std::pair<std::string, std::string>>{
             {R"({"kvm_capabilities": ["!4000000", "4000000"]})",
              "kvm_capabilities: this host's KVM lacks capability 4000000"},
             {R"({"cpuid_modifiers": [{"leaf": "0x8000001", "subleaf": "0x0", "flags": 0,
                  "modifiers": []}]})",
              "Template changes a CPUID entry not supported by KVM: Leaf: 0x8000001, Subleaf: "
              "0x0"}}) {
        ASSERT_EQ(call(c, "PUT", "/cpu-config", cpu_config).status, 204);
        auto start = call(c, "PUT", "/actions", R"({"action_type": "InstanceStart"})");
        EXPECT_EQ(start.status, 400);
        EXPECT_NE(start.body.find(says), std::string::npos) << start.body;
    }
    // Taken in order: added, then taken off the checks.
    ASSERT_EQ(
        call(c, "PUT", "/cpu-config", R"({"kvm_capabilities": ["4000000", "!4000000"]})").status,
        204);
    ASSERT_EQ(call(c, "PUT", "/cpu-config", R"({"kvm_capabilities": ["4000000"]})").status, 204);
    // The last of a static and a custom template is the one a boot uses.
    ASSERT_EQ(call(c, "PATCH", "/machine-config", R"({"cpu_template": "None"})").status, 204);
    ASSERT_EQ(call(c, "PUT", "/actions", R"({"action_type": "InstanceStart"})").status, 204)
        << e.log();
}

TEST(CpuTemplate, CapabilitiesAreTakenInOrder) {
    ApiEmber e;
    auto c = e.api();
    ASSERT_EQ(call(c, "PUT", "/machine-config", kMachine).status, 204);
    ASSERT_EQ(call(c, "PUT", "/boot-source", boot_source(guest("ticker"))).status, 204);
    ASSERT_EQ(
        call(c, "PUT", "/cpu-config", R"({"kvm_capabilities": ["4000000", "!4000000"]})").status,
        204);
    ASSERT_EQ(call(c, "PUT", "/actions", R"({"action_type": "InstanceStart"})").status, 204)
        << e.log();
}

TEST(CpuTemplate, BadTemplatesAreClearErrorsAndATemplateLeavesALoadAllowed) {
    ApiEmber e;
    auto c = e.api();
    for (
        const auto& [body, says] : std::initializer_list<std::pair<std::string, std::string>>{
            {R"({"cpuid_modifiers": [{"leaf": "0x1", "subleaf": "0x0", "flags": 0, "modifiers":
                 [{"register": "fax", "bitmap": "0b1"}]}]})",
             "cpuid_modifiers[0].modifiers[0].register: unknown variant, expected one of `eax`"},
            {R"({"cpuid_modifiers": [{"leaf": "0x1", "subleaf": "0x0", "flags": 0, "modifiers":
                 [{"register": "eax", "bitmap": "0b12"}]}]})",
             "cpuid_modifiers[0].modifiers[0].bitmap: '2' is not 0, 1 or x"},
            {R"({"cpuid_modifiers": [{"leaf": "1", "subleaf": "0x0", "flags": 0, "modifiers": []}]})",
             "cpuid_modifiers[0].leaf: \\\"1\\\" is not a 0x (or 0b) number"},
            {R"({"msr_modifiers": [{"addr": "0x100000000", "bitmap": "0b1"}]})",
             "msr_modifiers[0].addr: \\\"0x100000000\\\" is not a 0x (or 0b) number of at most "
             "4294967295"},
            {R"({"cpuid_modifiers": [{"leaf": "0x1", "subleaf": "0x0", "flags": 0}]})",
             "cpuid_modifiers[0].modifiers: missing field `modifiers`"},
            {R"({"cpuid_modifiers": [{"leaf": "0x1", "subleaf": "0x0", "modifiers": []}]})",
             "cpuid_modifiers[0].flags: missing field `flags`"},
            {R"({"kvm_capabilities": ["0x79"]})",
             "kvm_capabilities[0]: \\\"0x79\\\" is not a decimal"},
            {R"({"reg_modifiers": []})", "reg_modifiers: only for aarch64"},
            {R"({"cpu_modifiers": []})", "cpu_modifiers"},
        }) {
        auto r = call(c, "PUT", "/cpu-config", body);
        EXPECT_EQ(r.status, 400) << body;
        EXPECT_NE(r.body.find(says), std::string::npos) << r.body;
    }
    // A template is no boot resource: a snapshot may still be loaded (here one that is not there).
    ASSERT_EQ(call(c, "PUT", "/cpu-config", R"({"kvm_capabilities": []})").status, 204);
    auto load =
        call(c, "PUT", "/snapshot/load",
             R"({"snapshot_path": "/nonexistent/vm.state", "mem_file_path": "/nonexistent"})");
    EXPECT_EQ(load.status, 400);
    EXPECT_EQ(load.body.find("after configuring boot-specific resources"), std::string::npos)
        << load.body;
}

TEST(CpuTemplate, NoneIsTakenOnceRunning) {
    ApiEmber e;
    auto c = e.api();
    ASSERT_EQ(call(c, "PUT", "/machine-config", kMachine).status, 204);
    ASSERT_EQ(call(c, "PUT", "/boot-source", boot_source(guest("ticker"))).status, 204);
    ASSERT_EQ(call(c, "PUT", "/actions", R"({"action_type": "InstanceStart"})").status, 204);
    auto late = call(c, "PUT", "/cpu-config", R"({"kvm_capabilities": []})");
    EXPECT_EQ(late.status, 400);
    EXPECT_NE(late.body.find("not supported after starting the microVM"), std::string::npos)
        << late.body;
}

}  // namespace
}  // namespace ember::testing
