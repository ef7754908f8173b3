// A fleet's template from its hosts' dumps (vmm/machine/fleet_template): which bits it clears and
// which it leaves each host, that a guest booted under it on one host passes every other host's
// load check, what it refuses; and what a template gives that a host lacks.
#include <gtest/gtest.h>

#include <vector>

#include "core/arch/x86_64/cpu_fit.h"
#include "tests/unit/cpuid_entry.h"
#include "vmm/machine/fleet_template.h"
#include "vmm/machine/templated_cpu.h"

namespace ember {
namespace {

using Cpuid = std::vector<kvm_cpuid_entry2>;

constexpr auto entry = ember::testing::cpuid_entry;

// "AuthenticAMD" in leaf 0's EBX, EDX, ECX.
constexpr uint32_t kAuth = 0x68747541, kEnti = 0x69746e65, kCamd = 0x444d4163;

// Two hosts of one vendor. The newer has avx (1 ECX 28), avx2 (7.0 EBX 5), leaf 7.1 with avx_vnni
// (EAX 4), AVX-512 state (0xD.0 EAX 5-7), more basic and extended leaves, and more physical but
// fewer linear address bits.
const Cpuid kNewer{entry(0, 0, 0xd, kAuth, kCamd, kEnti),
                   entry(1, 0, 0xa00f11, 0, 0x98000001, 0),
                   entry(7, 0, 1, 1u << 5, 0, 0),
                   entry(7, 1, 1u << 4, 0, 0, 0),
                   entry(0xd, 0, 0xe7, 0, 0, 0),
                   entry(0xd, 1, 0xf, 0, 0, 0),
                   entry(0x80000000, 0, 0x80000021, 0, 0, 0),
                   entry(0x80000001, 0, 0, 0, 0, 0),
                   entry(0x80000008, 0, 0x302e, 0, 0, 0),
                   entry(0x80000021, 0, 1u << 8, 0, 0, 0)};
const Cpuid kOlder{entry(0, 0, 0xd, kAuth, kCamd, kEnti),
                   entry(1, 0, 0x800f12, 0, 0x88000001, 0),
                   entry(7, 0, 0, 0, 0, 0),
                   entry(0xd, 0, 0x7, 0, 0, 0),
                   entry(0xd, 1, 0x1, 0, 0, 0),
                   entry(0x80000000, 0, 0x80000008, 0, 0, 0),
                   entry(0x80000001, 0, 0, 0, 0, 0),
                   entry(0x80000008, 0, 0x3928, 0, 0, 0)};

const BitmapModifier* modifier(const CpuTemplate& t, uint32_t leaf, CpuidRegister reg) {
    for (const auto& m : t.cpuid_modifiers)
        if (m.leaf == leaf)
            for (const auto& r : m.modifiers)
                if (r.reg == reg) return &r.bitmap;
    return nullptr;
}

uint64_t xcr0_of(const Cpuid& cpuid) {
    for (const auto& e : cpuid)
        if (e.function == 0xd && e.index == 0) return uint64_t{e.edx} << 32 | e.eax;
    return 1;
}

TEST(FleetTemplateOf, AGuestUnderItOnEitherHostPassesTheOthersLoadCheck) {
    const std::vector dumps{dump_of(kNewer), dump_of(kOlder)};
    auto t = fleet_template(dumps);
    ASSERT_TRUE(t) << t.error().message;
    for (const Cpuid* here : {&kNewer, &kOlder})
        for (const Cpuid* there : {&kNewer, &kOlder}) {
            auto guest = templated_cpuid(*here, *t);
            ASSERT_TRUE(guest) << guest.error().message;
            // Every feature the guest may use, with every XSAVE component it may enable set.
            const auto s = x86::cpu_shortfall(*guest, xcr0_of(*guest), {}, *there, {});
            EXPECT_TRUE(s.empty()) << x86::describe(s);
        }
    // Without it, a guest on the newer host would not load on the older.
    EXPECT_FALSE(x86::cpu_shortfall(kNewer, xcr0_of(kNewer), {}, kOlder, {}).empty());
}

TEST(FleetTemplateOf, FeaturesOneHostLacksAreClearedAndTheRestIsEachHostsOwn) {
    auto t = fleet_template(std::vector{dump_of(kNewer), dump_of(kOlder)});
    ASSERT_TRUE(t) << t.error().message;
    EXPECT_EQ(modifier(*t, 1, CpuidRegister::Eax), nullptr) << "family and model are each host's";
    const BitmapModifier* ecx = modifier(*t, 1, CpuidRegister::Ecx);
    ASSERT_NE(ecx, nullptr);
    // Every compared bit but sse3 cleared: avx (one host lacks it) and the bits neither has;
    // TSC-deadline, OSXSAVE and the hypervisor bit are not features, and are left.
    EXPECT_EQ(ecx->mask, ~uint64_t{(1u << 0) | (1u << 24) | (1u << 27) | (1u << 31)} & 0xffffffff);
    EXPECT_EQ(ecx->value, 0u);
    // XCR0's components: x87, SSE, AVX kept; the AVX-512 states cleared, as all others.
    EXPECT_EQ(modifier(*t, 0xd, CpuidRegister::Eax)->mask, ~uint64_t{0x7} & 0xffffffff);
    // The highest leaves and leaf-7 subleaf are the lowest of the hosts', and the address widths.
    EXPECT_EQ(modifier(*t, 0, CpuidRegister::Eax)->value, 0xdu);
    EXPECT_EQ(modifier(*t, 0x80000000, CpuidRegister::Eax)->value, 0x80000008u);
    const BitmapModifier* seven = nullptr;
    for (const auto& m : t->cpuid_modifiers)
        if (m.leaf == 7 && m.subleaf == 0)
            for (const auto& r : m.modifiers)
                if (r.reg == CpuidRegister::Eax) seven = &r.bitmap;
    ASSERT_NE(seven, nullptr);
    EXPECT_EQ(seven->value, 0u);
    EXPECT_EQ(modifier(*t, 0x80000008, CpuidRegister::Eax)->value, 0x3028u);
    EXPECT_EQ(modifier(*t, 0x80000008, CpuidRegister::Eax)->mask, 0xffffu);
    // The newer host's guest loses the leaves past those bounds, which KVM would answer.
    auto guest = templated_cpuid(kNewer, *t);
    ASSERT_TRUE(guest);
    for (const auto& e : *guest) {
        EXPECT_FALSE(e.function == 7 && e.index == 1) << "leaf 7.1 is past 7.0's new bound";
        EXPECT_NE(e.function, 0x80000021u) << "0x80000021 is past the new extended bound";
    }
}

TEST(FleetTemplateOf, OnlyDumpsOfOneVendorThatAgreeOnWhatAGuestSeesAreIntersected) {
    auto refused = [](std::vector<CpuTemplate> dumps) {
        auto t = fleet_template(dumps);
        return t ? std::string("(made a template)") : t.error().message;
    };
    CpuTemplate kept = dump_of(kOlder);
    kept.cpuid_modifiers[1].modifiers[2].bitmap.mask = 0xfffffffe;
    EXPECT_EQ(refused({dump_of(kNewer), kept}),
              "dump 2: leaf 0x1, subleaf 0x0, ecx keeps bits (x): not a dump, which gives every "
              "bit");
    CpuTemplate short_one = dump_of(kOlder);
    short_one.cpuid_modifiers[1].modifiers.pop_back();
    EXPECT_EQ(refused({short_one}),
              "dump 1: leaf 0x1, subleaf 0x0 lacks edx: not a dump, which gives every register");
    EXPECT_EQ(refused({dump_of(kNewer), CpuTemplate{}}),
              "dump 2 lacks leaf 0x0, subleaf 0x0, which every CPU has: not a dump");
    CpuTemplate with_msr = dump_of(kOlder);
    with_msr.msr_modifiers.push_back({.addr = 0x277, .bitmap = {}});
    EXPECT_EQ(refused({with_msr}),
              "dump 1: sets MSRs or KVM capabilities: not a dump, which gives CPUID only");
    CpuTemplate twice = dump_of(kOlder);
    twice.cpuid_modifiers.push_back(twice.cpuid_modifiers[1]);
    EXPECT_EQ(refused({twice}), "dump 1: leaf 0x1, subleaf 0x0 is given twice");
    Cpuid intel = kOlder;
    intel[0].ebx = 0x756e6547;
    EXPECT_EQ(refused({dump_of(kOlder), dump_of(intel)}),
              "dump 2 is from another CPU vendor than dump 1: a template cannot make one "
              "vendor's CPU pass for another's");
    // A leaf whose features a load compares, inside what every host's guest looks at, that one
    // host does not give: no template can take it from the other.
    Cpuid no_seven;
    for (const auto& e : kOlder)
        if (e.function != 7) no_seven.push_back(e);
    EXPECT_EQ(refused({dump_of(kNewer), dump_of(no_seven)}),
              "dump 2 lacks leaf 0x7, subleaf 0x0, which dump 1 gives within the leaves every "
              "dump has");
    EXPECT_EQ(refused({}), "no dumps to intersect");
}

TEST(FleetTemplateOf, WhatATemplateGivesBeyondTheHostIsNamed) {
    const Cpuid host{entry(0, 0, 0xd, 0, 0, 0), entry(1, 0, 0, 0, 0, 0), entry(7, 0, 0, 0, 0, 0),
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
