// core/arch/x86_64/cpu_fit: what a snapshot's guest CPU needs that a host's KVM lacks, named.
#include "core/arch/x86_64/cpu_fit.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "tests/unit/cpuid_entry.h"

namespace ember::x86 {
namespace {

constexpr auto leaf = ember::testing::cpuid_entry;

constexpr uint32_t kRdrand = 1u << 30, kAvx = 1u << 28, kHypervisor = 1u << 31, kOsxsave = 1u << 27,
                   kHtt = 1u << 28, kSse2 = 1u << 26;
constexpr uint32_t kAvx2 = 1u << 5, kClflushopt = 1u << 23, kOspke = 1u << 4, kPku = 1u << 3;

// A host with a few features, and a guest given exactly those.
std::vector<kvm_cpuid_entry2> host() {
    return {leaf(0x1, 0, 0, 0, kRdrand | kAvx, kSse2),
            leaf(0x7, 0, 0, kAvx2 | kClflushopt, kPku, 0), leaf(0x7, 1, 0, 0, 0, 0),
            leaf(0xd, 0, 0x7, 0, 0, 0)};
}

kvm_msr_entry msr(uint32_t index, uint64_t data = 1) {
    return kvm_msr_entry{.index = index, .reserved = 0, .data = data};
}

TEST(CpuFit, AGuestGivenWhatTheHostOffersFits) {
    const std::vector<kvm_msr_entry> saved{msr(0x10), msr(0x174)};
    const std::vector<uint32_t> msrs{0x10, 0x174};
    const auto s = cpu_shortfall(host(), 0x7, saved, host(), msrs);
    EXPECT_TRUE(s.empty());
    EXPECT_EQ(describe(s), "the guest's CPU fits this host");
}

TEST(CpuFit, EveryMissingFeatureIsNamedInTheWordsOfProcCpuinfo) {
    auto here = host();
    here[0].ecx &= ~kRdrand;
    here[1].ebx &= ~(kAvx2 | kClflushopt);
    const auto s = cpu_shortfall(host(), 0x7, {}, here, {});
    EXPECT_EQ(s.features, (std::vector<std::string>{"rdrand", "avx2", "clflushopt"}));
    EXPECT_EQ(describe(s),
              "this host lacks rdrand, avx2, clflushopt that the guest was booted with; restore "
              "it on a host whose CPU and KVM have them");
}

// Bits ember sets, bits that mirror a control register, TSC-deadline (which KVM emulates and only
// newer KVMs report), AMD's copy of leaf 1 in 0x80000001 and KVM's per-version hints.
TEST(CpuFit, BitsThatAreNoFeatureOfTheHostAreNotCompared) {
    auto guest = host();
    guest[0].ecx |= kHypervisor | kOsxsave | (1u << 24);
    guest[0].edx |= kHtt;
    guest[1].ecx |= kOspke;
    guest[1].ebx |= (1u << 6) | (1u << 13);
    guest.push_back(leaf(0x80000001, 0, 0, 0, 0, 0x0183f3ffu));
    guest.push_back(leaf(0x80000008, 0, 0, (1u << 17) | (1u << 26) | (1u << 30), 0, 0));
    EXPECT_TRUE(cpu_shortfall(guest, 0x7, {}, host(), {}).empty())
        << describe(cpu_shortfall(guest, 0x7, {}, host(), {}));
}

TEST(CpuFit, ALeafTheHostLacksLacksEveryBitAndSubleavesAreTheirOwn) {
    std::vector<kvm_cpuid_entry2> guest = host();
    guest.push_back(leaf(0x80000001, 0, 0, 0, 0, 1u << 29));  // lm
    guest[2].eax = 1u << 4;                                   // 7.1: avx_vnni
    guest[1].ebx |= 1u << 22;                                 // 7.0 ebx bit 22: no name
    const auto s = cpu_shortfall(guest, 0x7, {}, host(), {});
    EXPECT_EQ(s.features, (std::vector<std::string>{"cpuid 0x7.0 ebx bit 22", "avx_vnni", "lm"}));
}

TEST(CpuFit, XsaveComponentsTheGuestEnabledMustBeOnesTheHostSaves) {
    const auto s = cpu_shortfall(host(), 0x207 | (uint64_t{1} << 40), {}, host(), {});
    EXPECT_EQ(s.xsave, (std::vector<std::string>{"pkru", "XCR0 bit 40"}));
    EXPECT_NE(describe(s).find("cannot save the XSAVE state pkru, XCR0 bit 40"), std::string::npos)
        << describe(s);
}

// An MSR at 0 that this host does not list is left out of the load instead (another kernel's,
// with no state here).
TEST(CpuFit, MsrsTheHostsKvmDoesNotListAreNamedOnceUnlessTheyHoldZero) {
    const std::vector<kvm_msr_entry> saved{msr(0x10), msr(0x1db), msr(0x1db), msr(0xc0000080),
                                           msr(0x40000020, 0)};
    const std::vector<uint32_t> here{0x10, 0xc0000080};
    const auto s = cpu_shortfall(host(), 0x7, saved, host(), here);
    EXPECT_EQ(s.msrs, (std::vector<uint32_t>{0x1db}));
    EXPECT_TRUE(not_restored(msr(0x40000020, 0), here));
    EXPECT_FALSE(not_restored(msr(0x1db), here));
    EXPECT_FALSE(not_restored(msr(0x10, 0), here));
    EXPECT_NE(describe(s).find("does not restore the MSRs 0x1db that the snapshot saved"),
              std::string::npos)
        << describe(s);
}

// The controls a guest turns on that a host without them refuses: SPEC_CTRL's (7.2 EDX 0-4),
// automatic IBRS and SBPB (0x80000021 EAX 8, 27), and KVM's paravirtual features; and not the
// bits of those leaves that only describe the CPU.
TEST(CpuFit, ControlsAGuestTurnsOnAndKvmsParavirtualFeaturesAreCompared) {
    const std::vector guest{leaf(0x7, 2, 0, 0, 0, 0x1f | 1u << 5),
                            leaf(0x80000021, 0, 1u << 8 | 1u << 27 | 1u << 2, 0, 0, 0),
                            leaf(0x40000001, 0, 1u << 7 | 1u << 24, 0, 0, 0)};
    const auto s = cpu_shortfall(guest, 1, {}, host(), {});
    EXPECT_EQ(s.features,
              (std::vector<std::string>{"cpuid 0x7.2 edx bit 0", "cpuid 0x7.2 edx bit 1",
                                        "cpuid 0x7.2 edx bit 2", "cpuid 0x7.2 edx bit 3",
                                        "cpuid 0x7.2 edx bit 4", "autoibrs", "sbpb",
                                        "kvm_pv_unhalt", "kvm_clocksource_stable"}));
}

TEST(CpuFit, TheVendorComesFromLeafZero) {
    kvm_cpuid_entry2 zero{};
    std::memcpy(&zero.ebx, "Auth", 4);
    std::memcpy(&zero.edx, "enti", 4);
    std::memcpy(&zero.ecx, "cAMD", 4);
    EXPECT_EQ(cpu_vendor(std::vector{zero}), "AuthenticAMD");
    EXPECT_EQ(cpu_vendor(host()), "");
    std::memcpy(&zero.edx, "\x1b[2J", 4);  // a terminal's escape, from a hostile state file
    EXPECT_EQ(cpu_vendor(std::vector{zero}), "Auth?[2JcAMD");
}

}  // namespace
}  // namespace ember::x86
