// A fleet's template from its hosts' dumps (vmm/machine/fleet_template): which bits it clears,
// which it leaves each host, and what it refuses; and what a template gives that a host lacks.
#include <gtest/gtest.h>

#include <vector>

#include "vmm/machine/fleet_template.h"

namespace ember {
namespace {

kvm_cpuid_entry2 entry(uint32_t leaf, uint32_t subleaf, uint32_t eax, uint32_t ebx, uint32_t ecx,
                       uint32_t edx) {
    kvm_cpuid_entry2 e{};
    e.function = leaf;
    e.index = subleaf;
    e.flags = subleaf ? KVM_CPUID_FLAG_SIGNIFCANT_INDEX : 0;
    e.eax = eax;
    e.ebx = ebx;
    e.ecx = ecx;
    e.edx = edx;
    return e;
}

const BitmapModifier* modifier(const CpuTemplate& t, uint32_t leaf, CpuidRegister reg) {
    for (const auto& m : t.cpuid_modifiers)
        if (m.leaf == leaf)
            for (const auto& r : m.modifiers)
                if (r.reg == reg) return &r.bitmap;
    return nullptr;
}

TEST(FleetTemplateOf, FeaturesOneHostLacksAreClearedAndTheRestIsEachHostsOwn) {
    // Leaf 1: family/model in EAX differ; ECX has sse3 (0) on both, avx (28) on one; bit 27
    // (OSXSAVE) and bit 31 (the hypervisor bit) are not features and stay each host's.
    const std::vector newer{entry(0, 0, 0xd, 1, 2, 3), entry(1, 0, 0xa00f11, 0, 0x98000001, 0),
                            entry(0x14, 0, 1, 0, 0, 0), entry(0x80000000, 0, 0x80000021, 0, 0, 0)};
    const std::vector older{entry(0, 0, 0xb, 1, 2, 3), entry(1, 0, 0x800f12, 0, 0x88000001, 0),
                            entry(0x80000000, 0, 0x80000008, 0, 0, 0)};
    const std::vector dumps{dump_of(newer), dump_of(older)};
    auto t = fleet_template(dumps);
    ASSERT_TRUE(t) << t.error().message;

    EXPECT_EQ(modifier(*t, 1, CpuidRegister::Eax), nullptr) << "family and model are each host's";
    const BitmapModifier* ecx = modifier(*t, 1, CpuidRegister::Ecx);
    ASSERT_NE(ecx, nullptr);
    // Every compared bit but sse3 cleared: avx (one host lacks it) and the bits neither has.
    EXPECT_EQ(ecx->mask, ~uint64_t{(1u << 0) | (1u << 24) | (1u << 27) | (1u << 31)} & 0xffffffff);
    EXPECT_EQ(ecx->value, 0u);
    EXPECT_EQ(modifier(*t, 0, CpuidRegister::Eax)->value, 0xbu) << "the lowest highest leaf";
    EXPECT_EQ(modifier(*t, 0, CpuidRegister::Eax)->mask, 0xffffffffu);
    EXPECT_EQ(modifier(*t, 0x80000000, CpuidRegister::Eax)->value, 0x80000008u);
    for (const auto& m : t->cpuid_modifiers)
        EXPECT_NE(m.leaf, 0x14u) << "a leaf one host lacks is not in the template";

    // Each host, given it, keeps only what both have.
    for (const auto* host : {&newer, &older}) {
        auto s = shortfall_under(*t, *host, {});
        ASSERT_TRUE(s) << s.error().message;
        EXPECT_TRUE(s->empty());
    }
}

TEST(FleetTemplateOf, OnlyDumpsAreIntersected) {
    const std::vector one{entry(1, 0, 0, 0, 1, 0)};
    CpuTemplate kept = dump_of(one);
    kept.cpuid_modifiers[0].modifiers[2].bitmap.mask = 0xfffffffe;
    auto t = fleet_template(std::vector{dump_of(one), kept});
    ASSERT_FALSE(t);
    EXPECT_EQ(
        t.error().message,
        "dump 2: leaf 0x1, subleaf 0x0, ecx keeps bits (x): not a dump, which gives every bit");
    CpuTemplate short_one = dump_of(one);
    short_one.cpuid_modifiers[0].modifiers.pop_back();
    t = fleet_template(std::vector{short_one});
    ASSERT_FALSE(t);
    EXPECT_EQ(t.error().message,
              "dump 1: leaf 0x1, subleaf 0x0 lacks edx: not a dump, which gives every register");
    EXPECT_FALSE(fleet_template(std::vector<CpuTemplate>{}));
}

TEST(FleetTemplateOf, WhatATemplateGivesBeyondTheHostIsNamed) {
    const std::vector host{entry(1, 0, 0, 0, 0, 0), entry(7, 0, 0, 0, 0, 0),
                           entry(0xd, 0, 0x7, 0, 0, 0)};
    CpuTemplate t;
    t.cpuid_modifiers = {
        {.leaf = 7,
         .subleaf = 0,
         .flags = 1,
         .modifiers = {{CpuidRegister::Ebx, BitmapModifier{.mask = 1u << 5, .value = 1u << 5}}}},
        {.leaf = 0xd,
         .subleaf = 0,
         .flags = 1,
         .modifiers = {{CpuidRegister::Eax, BitmapModifier{.mask = 0xe7, .value = 0xe7}}}},
    };
    t.msr_modifiers = {{.addr = 0x277, .bitmap = {}}, {.addr = 0x10, .bitmap = {}}};
    const std::vector<uint32_t> msrs{0x10};
    auto s = shortfall_under(t, host, msrs);
    ASSERT_TRUE(s) << s.error().message;
    EXPECT_EQ(s->features, std::vector<std::string>{"avx2"});
    EXPECT_EQ(s->xsave,
              (std::vector<std::string>{"avx512_opmask", "avx512_zmm_hi256", "avx512_hi16_zmm"}));
    EXPECT_EQ(s->msrs, std::vector<uint32_t>{0x277});
}

}  // namespace
}  // namespace ember
