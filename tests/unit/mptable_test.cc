#include <gtest/gtest.h>

#include <numeric>
#include <vector>

#include "core/arch/x86_64/mptable.h"
#include "tests/unit/test_memory.h"

namespace ember::x86 {
namespace {

uint8_t sum(const GuestMemory& mem, uint64_t addr, size_t len) {
    std::vector<uint8_t> bytes(len);
    EXPECT_TRUE(mem.read(addr, bytes));
    return std::accumulate(bytes.begin(), bytes.end(), uint8_t{0});
}

TEST(MpTable, FloatingPointerAndTableAreValidForEveryVcpuCount) {
    for (uint32_t cpus : {1u, 2u, 7u, 32u}) {
        auto mem = testing::make_memory(16);
        ASSERT_TRUE(write_mptable(mem, cpus));
        EXPECT_EQ(*mem.read_obj<uint32_t>(kMptableAddr), 0x5f504d5fu);  // "_MP_"
        EXPECT_EQ(sum(mem, kMptableAddr, 16), 0) << "floating pointer checksum";
        uint32_t table = *mem.read_obj<uint32_t>(kMptableAddr + 4);
        EXPECT_EQ(*mem.read_obj<uint32_t>(table), 0x504d4350u);  // "PCMP"
        uint16_t length = *mem.read_obj<uint16_t>(table + 4);
        EXPECT_EQ(sum(mem, table, length), 0) << "table checksum";
        EXPECT_LE(table + length, kEbdaEnd);
        uint16_t entries = *mem.read_obj<uint16_t>(table + 34);
        EXPECT_EQ(entries, cpus + 1 + 1 + 24 + 2);
        // First entry: the bootstrap processor, APIC ID 0, enabled.
        EXPECT_EQ(*mem.read_obj<uint8_t>(table + 44), 0);
        EXPECT_EQ(*mem.read_obj<uint8_t>(table + 44 + 3), 3);
        // The IOAPIC follows the CPUs and the bus, with the ID after the last CPU's.
        uint64_t ioapic = table + 44 + 20 * cpus + 8;
        EXPECT_EQ(*mem.read_obj<uint8_t>(ioapic), 2);
        EXPECT_EQ(*mem.read_obj<uint8_t>(ioapic + 1), cpus);
        EXPECT_EQ(*mem.read_obj<uint32_t>(ioapic + 4), 0xfec00000u);
        // GSI 23: edge-triggered, active high, on pin 23.
        uint64_t last_irq = ioapic + 8 + 23 * 8;
        EXPECT_EQ(*mem.read_obj<uint16_t>(last_irq + 2), 0x5);
        EXPECT_EQ(*mem.read_obj<uint8_t>(last_irq + 7), 23);
    }
}

TEST(MpTable, RejectsImpossibleVcpuCounts) {
    auto mem = testing::make_memory(16);
    EXPECT_FALSE(write_mptable(mem, 0));
    EXPECT_FALSE(write_mptable(mem, 33));
}

}  // namespace
}  // namespace ember::x86
