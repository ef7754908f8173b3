#include <gtest/gtest.h>

#include "core/arch/x86_64/e820.h"
#include "tests/unit/test_memory.h"

namespace ember::x86 {
namespace {

TEST(Layout, SmallGuestIsOneRegionFromZero) {
    auto r = ram_regions(128ull << 20);
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].guest_addr, 0u);
    EXPECT_EQ(r[0].size, 128ull << 20);
}

TEST(Layout, LargeGuestSplitsAroundTheMmioGap) {
    auto r = ram_regions(4ull << 30);
    ASSERT_EQ(r.size(), 2u);
    EXPECT_EQ(r[0].size, kMmioGapStart);
    EXPECT_EQ(r[1].guest_addr, 1ull << 32);
    EXPECT_EQ(r[1].size, (4ull << 30) - kMmioGapStart);
}

TEST(E820, RamStopsBelowTheMpTableAndResumesAtOneMiB) {
    auto mem = testing::make_memory(64);
    auto map = e820_map(mem.regions());
    ASSERT_EQ(map.size(), 2u);
    EXPECT_EQ(map[0].addr, 0u);
    EXPECT_EQ(map[0].size, kMptableAddr);
    EXPECT_EQ(map[1].addr, kHimemStart);
    EXPECT_EQ(map[1].addr + map[1].size, 64ull << 20);
    for (auto& e : map) EXPECT_EQ(e.type, kE820Ram);
}

TEST(E820, MemoryAboveTheGapIsListed) {
    // e820_map only reads addresses and sizes: describe the regions without mapping 4 GiB.
    MemoryRegionSpec specs[] = {{0, 0x1000000}, {1ull << 32, 0x1000000}};
    auto mem = GuestMemory::create_anonymous(specs);
    ASSERT_TRUE(mem);
    auto map = e820_map(mem->regions());
    ASSERT_EQ(map.size(), 3u);
    EXPECT_EQ(map[2].addr, 1ull << 32);
    EXPECT_EQ(map[2].size, 0x1000000u);
}

}  // namespace
}  // namespace ember::x86
