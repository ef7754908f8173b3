#include <gtest/gtest.h>

#include <cstring>

#include "core/arch/x86_64/cpuid.h"
#include "core/arch/x86_64/gdt.h"
#include "core/arch/x86_64/lapic.h"
#include "core/arch/x86_64/msrs.h"
#include "core/arch/x86_64/page_tables.h"
#include "tests/unit/test_memory.h"

namespace ember::x86 {
namespace {

TEST(PageTables, IdentityMapTheFirstGiBWithLargePages) {
    auto mem = testing::make_memory(16);
    ASSERT_TRUE(write_identity_page_tables(mem));
    EXPECT_EQ(*mem.read_obj<uint64_t>(kPml4Addr), kPdptAddr | 0x3);
    EXPECT_EQ(*mem.read_obj<uint64_t>(kPdptAddr), kPdAddr | 0x3);
    EXPECT_EQ(*mem.read_obj<uint64_t>(kPdAddr), 0x83u);
    EXPECT_EQ(*mem.read_obj<uint64_t>(kPdAddr + 511 * 8), (511ull << 21) | 0x83);
}

TEST(Gdt, LongModeCodeSegmentDecodesAsKvmExpects) {
    auto gdt = boot_gdt(CpuMode::Long64);
    EXPECT_EQ(gdt[kCodeIndex], 0x00af9b000000ffffu);
    auto cs = segment_from_gdt_entry(gdt[kCodeIndex], kCodeIndex);
    EXPECT_EQ(cs.selector, 0x8);
    EXPECT_EQ(cs.l, 1);
    EXPECT_EQ(cs.db, 0);
    EXPECT_EQ(cs.type, 0xb);
    EXPECT_EQ(cs.limit, 0xffffffffu);
    EXPECT_EQ(cs.present, 1);
    auto cs32 = segment_from_gdt_entry(boot_gdt(CpuMode::Protected32)[kCodeIndex], kCodeIndex);
    EXPECT_EQ(cs32.l, 0);
    EXPECT_EQ(cs32.db, 1);
    auto tss = segment_from_gdt_entry(gdt[kTssIndex], kTssIndex);
    EXPECT_EQ(tss.type, 0xb);
    EXPECT_EQ(tss.s, 0);
}

kvm_cpuid_entry2 leaf(uint32_t function, uint32_t index = 0) {
    kvm_cpuid_entry2 e{};
    e.function = function;
    e.index = index;
    return e;
}

const kvm_cpuid_entry2* find(const std::vector<kvm_cpuid_entry2>& v, uint32_t fn,
                             uint32_t index = 0) {
    for (const auto& e : v)
        if (e.function == fn && e.index == index) return &e;
    return nullptr;
}

TEST(Cpuid, GivesEachVcpuItsApicIdAndTheTopology) {
    std::vector<kvm_cpuid_entry2> supported = {leaf(0), leaf(1), leaf(0xb, 0), leaf(0xb, 1),
                                               leaf(0x1f)};
    supported[1].ebx = 0x00000800;  // CLFLUSH size, to be kept
    auto cpu3 = guest_cpuid(supported, 3, CpuTopology{4, false});
    const auto* l1 = find(cpu3, 1);
    ASSERT_NE(l1, nullptr);
    EXPECT_EQ(l1->ebx >> 24, 3u);
    EXPECT_EQ((l1->ebx >> 16) & 0xff, 4u);
    EXPECT_EQ(l1->ebx & 0xffff, 0x0800u);
    EXPECT_TRUE(l1->ecx & (1u << 31)) << "hypervisor bit";
    EXPECT_TRUE(l1->edx & (1u << 28)) << "HTT with several vCPUs";
    EXPECT_EQ(find(cpu3, 0x1f), nullptr);
    const auto* smt = find(cpu3, 0xb, 0);
    const auto* core = find(cpu3, 0xb, 1);
    ASSERT_TRUE(smt && core);
    EXPECT_EQ(smt->ebx, 1u);
    EXPECT_EQ(core->ebx, 4u);
    EXPECT_EQ(core->eax, 2u);  // 4 vCPUs: 2 bits of APIC ID
    EXPECT_EQ(core->edx, 3u);
    const auto* hv = find(cpu3, 0x40000000);
    ASSERT_NE(hv, nullptr);
    EXPECT_EQ(std::memcmp(&hv->ebx, "KVMK", 4), 0);

    auto smt_topology = guest_cpuid(supported, 1, CpuTopology{2, true});
    EXPECT_EQ(find(smt_topology, 0xb, 0)->ebx, 2u);
    EXPECT_FALSE(find(guest_cpuid(supported, 0, CpuTopology{1, false}), 1)->edx & (1u << 28));
}

TEST(Cpuid, PhysicalAddressBits) {
    std::vector<kvm_cpuid_entry2> none;
    EXPECT_EQ(physical_address_bits(none), 36u);
    auto l = leaf(0x80000008);
    l.eax = 0x3030;
    EXPECT_EQ(physical_address_bits({l}), 48u);
}

TEST(Msrs, BootValuesEnableFastStringsAndWriteBack) {
    auto msrs = boot_msrs();
    auto value = [&](uint32_t index) -> uint64_t {
        for (auto& m : msrs)
            if (m.index == index) return m.data;
        ADD_FAILURE() << "MSR " << index << " missing";
        return uint64_t{0};
    };
    EXPECT_EQ(value(0x1a0), 1u);
    EXPECT_EQ(value(0x2ff), (1u << 11) | 6u);
    EXPECT_EQ(value(0x10), 0u);
}

TEST(Lapic, Lint0IsExtIntAndLint1IsNmi) {
    kvm_lapic_state lapic{};
    uint32_t masked = 0x10000 | 0x700;  // masked, some other delivery mode
    std::memcpy(lapic.regs + 0x350, &masked, 4);
    set_lint_delivery_modes(lapic);
    uint32_t lint0, lint1;
    std::memcpy(&lint0, lapic.regs + 0x350, 4);
    std::memcpy(&lint1, lapic.regs + 0x360, 4);
    EXPECT_EQ(lint0 & 0x700, 0x700u);
    EXPECT_EQ(lint0 & 0x10000, 0x10000u) << "other bits are kept";
    EXPECT_EQ(lint1 & 0x700, 0x400u);
}

}  // namespace
}  // namespace ember::x86
