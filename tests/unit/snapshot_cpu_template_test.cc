// The state file's cpu template section (snapshot/cpu_template_section): a template reads back as
// it was written, and a section no ember could have written is refused, bounded as the API is.
#include <gtest/gtest.h>

#include <cstring>

#include "core/base/bytes.h"
#include "snapshot/cpu_template_section.h"

namespace ember::snapshot {
namespace {

CpuTemplate sample() {
    CpuTemplate t;
    t.kvm_capabilities = {{.capability = 56, .removed = true}, {.capability = 7, .removed = false}};
    t.cpuid_modifiers = {{.leaf = 7,
                          .subleaf = 0,
                          .flags = 1,
                          .modifiers = {{CpuidRegister::Ebx, {.mask = 1u << 5, .value = 0}},
                                        {CpuidRegister::Edx, {.mask = 0xffffffff, .value = 3}}}}};
    t.msr_modifiers = {{.addr = 0x277, .bitmap = {.mask = ~uint64_t{0}, .value = 0x7040600070406}}};
    return t;
}

std::string error_of(std::span<const uint8_t> payload) {
    auto t = decode_cpu_template(payload);
    return t ? "(decoded)" : t.error().message;
}

TEST(SnapshotCpuTemplate, ATemplateReadsBackAsItWasWritten) {
    const auto bytes = encode(sample());
    auto back = decode_cpu_template(bytes);
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_EQ(*back, sample());
    EXPECT_EQ(encode(*back), bytes);
    auto empty = decode_cpu_template(encode(CpuTemplate{}));
    ASSERT_TRUE(empty);
    EXPECT_EQ(*empty, CpuTemplate{});
}

TEST(SnapshotCpuTemplate, WhatNoEmberWritesIsRefused) {
    auto bytes = encode(sample());
    // Cut anywhere, it is short.
    for (size_t n = 0; n < bytes.size(); ++n)
        EXPECT_NE(error_of(std::span(bytes).first(n)), "(decoded)") << n;
    auto longer = bytes;
    longer.push_back(0);
    EXPECT_EQ(error_of(longer), "cpu template: 1 bytes too many");

    // More capabilities than a template may hold.
    ByteWriter many;
    many.put(uint32_t{65});
    EXPECT_EQ(error_of(many.bytes()), "cpu template: 65 KVM capabilities, more than 64");

    // The first capability's flag (after the count and its number) as 2.
    auto flag = bytes;
    flag[8] = 2;
    EXPECT_NE(error_of(flag).find("a flag holds 2"), std::string::npos) << error_of(flag);

    // The CPUID modifier's first register: after the capabilities (4 + 2 * 5 bytes), the leaf
    // count, leaf, subleaf, flags and register count (5 * 4 bytes).
    const size_t reg = 4 + 2 * 5 + 5 * 4;
    auto not_a_register = bytes;
    not_a_register[reg] = 4;
    EXPECT_EQ(error_of(not_a_register), "cpu template: register 4 is not one");
    auto wide = bytes;
    wide[reg + 1 + 4] = 1;  // bit 32 of the mask
    EXPECT_EQ(error_of(wide), "cpu template: a bitmap wider than its 32 bits");
}

}  // namespace
}  // namespace ember::snapshot
