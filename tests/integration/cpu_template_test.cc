// A custom CPU template (PUT /cpu-config, Firecracker's language) as a booted guest sees it: its
// CPUID bits set and cleared over the host's, its MSR bitmap over the boot value, a KVM capability
// the host lacks failing InstanceStart by name, and the template refused once the VM runs.
#include <gtest/gtest.h>

#include <string>
#include <thread>

#include "tests/support/api_ember.h"

namespace ember::testing {
namespace {

// The hex number after `key` on the console, e.g. "ecx=" in "cpuid1 ebx=... ecx=...".
uint64_t printed(const std::string& out, const std::string& line, const std::string& key) {
    const auto at = out.find(line);
    if (at == std::string::npos) return ~uint64_t{0};
    const auto k = out.find(key, at);
    return k == std::string::npos ? ~uint64_t{0}
                                  : std::stoull(out.substr(k + key.size(), 18), nullptr, 16);
}

// Leaf 1 ECX: bit 0 set and bit 13 (cx16) cleared, whatever the host has; SYSENTER_CS's low 16
// bits set to 0x1234 and the rest kept (0 at boot).
constexpr const char* kTemplate = R"({
  "kvm_capabilities": ["!56"],
  "cpuid_modifiers": [
    {"leaf": "0x1", "subleaf": "0x0", "flags": 0,
     "modifiers": [{"register": "ecx", "bitmap": "0bxxxxxxxxxxxxxxxxxx0x_xxxx_xxxx_xxx1"}]}
  ],
  "msr_modifiers": [
    {"addr": "0x174", "bitmap": "0b0001_0010_0011_0100"}
  ]
})";

TEST(CpuTemplate, TheGuestBootsWithTheTemplatesCpuidAndMsrs) {
    ApiEmber e;
    auto c = e.api();
    ASSERT_EQ(call(c, "PUT", "/machine-config", R"({"vcpu_count": 1, "mem_size_mib": 32})").status,
              204);
    auto put = call(c, "PUT", "/cpu-config", kTemplate);
    ASSERT_EQ(put.status, 204) << put.body;
    ASSERT_EQ(call(c, "PUT", "/boot-source", boot_source(guest("cpuid_probe"))).status, 204);
    ASSERT_EQ(call(c, "PUT", "/actions", R"({"action_type": "InstanceStart"})").status, 204);
    // It prints, then resets the VM, which ends ember.
    ASSERT_EQ(e.wait(), 0) << e.log();
    const std::string out = read_file(e.dir.path() + "/console");
    const uint64_t ecx = printed(out, "cpuid1 ", "ecx=");
    ASSERT_NE(ecx, ~uint64_t{0}) << out;
    EXPECT_EQ(ecx & 1, 1u) << out;
    EXPECT_EQ(ecx & (1u << 13), 0u) << out;
    EXPECT_EQ(printed(out, "msr174=", "msr174="), 0x1234u) << out;
}

TEST(CpuTemplate, AKvmCapabilityTheHostLacksFailsTheBootByName) {
    ApiEmber e;
    auto c = e.api();
    ASSERT_EQ(call(c, "PUT", "/machine-config", R"({"vcpu_count": 1, "mem_size_mib": 32})").status,
              204);
    ASSERT_EQ(call(c, "PUT", "/cpu-config", R"({"kvm_capabilities": ["4000000"]})").status, 204);
    ASSERT_EQ(call(c, "PUT", "/boot-source", boot_source(guest("ticker"))).status, 204);
    auto start = call(c, "PUT", "/actions", R"({"action_type": "InstanceStart"})");
    EXPECT_EQ(start.status, 400);
    EXPECT_NE(start.body.find("kvm_capabilities: this host's KVM lacks capability 4000000"),
              std::string::npos)
        << start.body;
    // Fixed, it boots.
    ASSERT_EQ(call(c, "PUT", "/cpu-config", R"({"kvm_capabilities": ["!4000000"]})").status, 204);
    ASSERT_EQ(call(c, "PUT", "/actions", R"({"action_type": "InstanceStart"})").status, 204)
        << e.log();
}

TEST(CpuTemplate, BadTemplatesAreClearErrorsAndNoneIsTakenOnceRunning) {
    ApiEmber e;
    auto c = e.api();
    for (const auto& [body, says] : std::initializer_list<std::pair<std::string, std::string>>{
             {R"({"cpuid_modifiers": [{"leaf": "0x1", "subleaf": "0", "flags": 0, "modifiers":
                 [{"register": "fax", "bitmap": "0b1"}]}]})",
              "cpuid_modifiers[0].modifiers[0].register: unknown variant `fax`"},
             {R"({"cpuid_modifiers": [{"leaf": "0x1", "subleaf": "0", "flags": 0, "modifiers":
                 [{"register": "eax", "bitmap": "0b12"}]}]})",
              "cpuid_modifiers[0].modifiers[0].bitmap: '2' is not 0, 1 or x"},
             {R"({"msr_modifiers": [{"addr": "0x10a", "bitmap": "1111"}]})",
              "1111\\\" does not begin with 0b"},
             {R"({"msr_modifiers": [{"addr": "0x1_0000_0000", "bitmap": "0b1"}]})",
              "0x1_0000_0000\\\" is not an integer of at most 4294967295"},
             {R"({"cpuid_modifiers": [{"leaf": "0x1", "subleaf": "0", "modifiers": []}]})",
              "cpuid_modifiers[0].flags: missing field `flags`"},
             {R"({"reg_modifiers": []})", "reg_modifiers: only for aarch64"},
             {R"({"cpu_modifiers": []})", "cpu_modifiers"},
         }) {
        auto r = call(c, "PUT", "/cpu-config", body);
        EXPECT_EQ(r.status, 400) << body;
        EXPECT_NE(r.body.find(says), std::string::npos) << r.body;
    }
    ASSERT_EQ(call(c, "PUT", "/machine-config", R"({"vcpu_count": 1, "mem_size_mib": 32})").status,
              204);
    ASSERT_EQ(call(c, "PUT", "/boot-source", boot_source(guest("ticker"))).status, 204);
    ASSERT_EQ(call(c, "PUT", "/actions", R"({"action_type": "InstanceStart"})").status, 204);
    auto late = call(c, "PUT", "/cpu-config", R"({"kvm_capabilities": []})");
    EXPECT_EQ(late.status, 400);
    EXPECT_NE(late.body.find("not supported after starting the microVM"), std::string::npos)
        << late.body;
}

}  // namespace
}  // namespace ember::testing
