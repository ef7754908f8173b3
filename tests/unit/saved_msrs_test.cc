// Which MSRs a snapshot saves (core/arch/x86_64/saved_msrs): the guest's state, not the host's
// description; a feature's MSRs only with the feature; a template's whatever they are.
#include <gtest/gtest.h>

#include <tuple>
#include <vector>

#include "core/arch/x86_64/saved_msrs.h"
#include "tests/unit/cpuid_entry.h"

namespace ember::x86 {
namespace {

// As this kind of host's KVM lists them (AMD, a paravirtual KVM), with UMWAIT_CONTROL and XSS.
const std::vector<uint32_t> kHostList{
    0x174, 0x175,      0x176,      0xc0000081, 0xc0000083, 0xc0000102, 0xc0000084, 0xc0000082,
    0x10,  0x277,      0xc0010117, 0x1d9,      0x1db,      0x1dc,      0x1dd,      0x1de,
    0x12,  0x11,       0x4b564d01, 0x4b564d00, 0x3b,       0x6e0,      0x10a,      0x345,
    0x1a0, 0x17a,      0x17b,      0x34,       0xce,       0x140,      0xc001011f, 0x1fc,
    0x8b,  0xc0010015, 0xe1,       0xda0,      0xc0000103, 0x48,       0x122,      0x3a};

constexpr auto entry = ember::testing::cpuid_entry;

bool in(const std::vector<uint32_t>& list, uint32_t msr) {
    return std::find(list.begin(), list.end(), msr) != list.end();
}

TEST(SavedMsrs, TheGuestsStateAndNotTheHostsDescription) {
    const auto saved = msrs_to_save(kHostList, {}, {});
    for (uint32_t state : {0x10u, 0x11u, 0x12u, 0x174u, 0x277u, 0x1a0u, 0x3bu, 0x6e0u, 0x1d9u,
                           0x140u, 0xc0000082u, 0xc0000102u, 0x4b564d00u, 0x17au})
        EXPECT_TRUE(in(saved, state)) << std::hex << state;
    // Microcode, platform, perf and vulnerability descriptions, an SMI count, branch records.
    for (uint32_t host : {0x8bu, 0xceu, 0x345u, 0x10au, 0x34u})
        EXPECT_FALSE(in(saved, host)) << std::hex << host;
    // Features the guest was not given.
    for (uint32_t feature :
         {0xe1u, 0xda0u, 0xc0000103u, 0xc001011fu, 0xc0010117u, 0x48u, 0x122u, 0x3au})
        EXPECT_FALSE(in(saved, feature)) << std::hex << feature;
    // Never one the host does not list.
    EXPECT_FALSE(in(saved, 0x2ff));
}

TEST(SavedMsrs, AFeaturesMsrsWithTheFeatureAndATemplatesWhateverTheyAre) {
    const std::vector cpuid{entry(0x7, 0, 0, 0, 1u << 5 /* waitpkg */, 0),
                            entry(0xd, 1, 1u << 3 /* xsaves */, 0, 0, 0),
                            entry(0x80000001, 0, 0, 0, 0, 1u << 27 /* rdtscp */),
                            entry(0x80000008, 0, 0, 1u << 25 /* virt_ssbd */, 0, 0)};
    const std::vector<uint32_t> from_template{0x10a, 0x2ff};
    const auto saved = msrs_to_save(kHostList, cpuid, from_template);
    for (uint32_t msr : {0xe1u, 0xda0u, 0xc0000103u, 0xc001011fu, 0x10au})
        EXPECT_TRUE(in(saved, msr)) << std::hex << msr;
    EXPECT_FALSE(in(saved, 0x2ff)) << "a template's MSR the host does not list";
    EXPECT_FALSE(in(saved, 0x48)) << "no speculation control was given";
    EXPECT_FALSE(in(saved, 0x3a)) << "vmx was not given";
    EXPECT_FALSE(in(saved, 0xc0010117)) << "svm was not given";
    // SPEC_CTRL with any of its features, Intel's or AMD's; TSX_CTRL with ARCH_CAPABILITIES;
    // FEAT_CTL with vmx.
    for (auto [leaf, reg, bit] : {std::tuple{0x7u, 3, 26},
                                  {0x7u, 3, 31},
                                  {0x80000008u, 1, 14},
                                  {0x80000008u, 1, 15},
                                  {0x80000008u, 1, 24}}) {
        kvm_cpuid_entry2 e = entry(leaf, 0, 0, 0, 0, 0);
        (reg == 1 ? e.ebx : e.edx) = 1u << bit;
        EXPECT_TRUE(in(msrs_to_save(kHostList, std::vector{e}, {}), 0x48)) << leaf << " " << bit;
    }
    EXPECT_TRUE(
        in(msrs_to_save(kHostList, std::vector{entry(0x7, 0, 0, 0, 0, 1u << 29)}, {}), 0x122));
    EXPECT_TRUE(
        in(msrs_to_save(kHostList, std::vector{entry(0x1, 0, 0, 0, 1u << 5, 0)}, {}), 0x3a));
    // In the host list's order.
    EXPECT_TRUE(std::is_sorted(saved.begin(), saved.end(), [](uint32_t a, uint32_t b) {
        return std::find(kHostList.begin(), kHostList.end(), a) <
               std::find(kHostList.begin(), kHostList.end(), b);
    }));
}

// Every MSR this kind of host lists is placed: saved, a feature's, or the host's description; one
// a newer KVM adds is named (Intel's CMCI controls here).
TEST(SavedMsrs, OnlyWhatEmberDoesNotKnowIsUnclassified) {
    EXPECT_TRUE(unclassified_msrs(kHostList).empty());
    auto newer = kHostList;
    // SMBASE, a VMX capability, a KVM and a Hyper-V MSR (as Debian's 6.12 KVM lists them), CET.
    newer.insert(newer.end(), {0x280, 0x9e, 0x480, 0x4b564d07, 0x40000073, 0x6a2});
    EXPECT_EQ(unclassified_msrs(newer), std::vector<uint32_t>{0x280});
}

}  // namespace
}  // namespace ember::x86
