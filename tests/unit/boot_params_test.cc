#include <asm/bootparam.h>
#include <gtest/gtest.h>

#include "core/arch/x86_64/boot_params.h"
#include "tests/unit/test_memory.h"

namespace ember::x86 {
namespace {

using testing::make_memory;

TEST(Cmdline, WritesNulTerminatedAndEnforcesTheKernelsLimit) {
    auto mem = make_memory(16);
    auto n = write_cmdline(mem, "console=ttyS0", 2048);
    ASSERT_TRUE(n);
    EXPECT_EQ(*n, 14u);
    char buf[14];
    ASSERT_TRUE(mem.read(kCmdlineAddr, std::span(reinterpret_cast<uint8_t*>(buf), 14)));
    EXPECT_STREQ(buf, "console=ttyS0");

    EXPECT_TRUE(write_cmdline(mem, std::string(2047, 'a'), 2048));  // 2047 + NUL fits exactly
    auto too_long = write_cmdline(mem, std::string(2048, 'a'), 2048);
    ASSERT_FALSE(too_long);
    EXPECT_NE(too_long.error().message.find("at most 2047"), std::string::npos);
    EXPECT_FALSE(write_cmdline(mem, std::string("a\0b", 3), 2048));
}

TEST(ZeroPage, CarriesTheBootProtocolFields) {
    auto mem = make_memory(64);
    KernelImage kernel;
    kernel.end = 0x2000000;
    auto e820 = e820_map(mem.regions());
    BootInfo info{e820, 20, InitrdPlacement{0x3000000, 0x1234}};
    ASSERT_TRUE(write_zero_page(mem, kernel, info));
    auto params = mem.read_obj<boot_params>(kZeroPageAddr);
    ASSERT_TRUE(params);
    EXPECT_EQ(params->hdr.boot_flag, 0xaa55);
    EXPECT_EQ(params->hdr.header, 0x53726448u);
    EXPECT_EQ(params->hdr.type_of_loader, 0xff);
    EXPECT_EQ(params->hdr.cmd_line_ptr, kCmdlineAddr);
    EXPECT_EQ(params->hdr.cmdline_size, 19u);
    EXPECT_EQ(params->hdr.ramdisk_image, 0x3000000u);
    EXPECT_EQ(params->hdr.ramdisk_size, 0x1234u);
    ASSERT_EQ(params->e820_entries, 2);
    EXPECT_EQ(params->e820_table[1].addr, kHimemStart);
    EXPECT_EQ(params->e820_table[1].size, (64ull << 20) - kHimemStart);
}

TEST(Initrd, GoesAtTheTopOfLowMemoryPageAligned) {
    auto mem = make_memory(64);
    KernelImage kernel;
    kernel.end = 0x2000000;
    auto addr = initrd_address(mem, kernel, 10000);
    ASSERT_TRUE(addr);
    EXPECT_EQ(*addr % 4096, 0u);
    EXPECT_LE(*addr + 10000, 64ull << 20);
    EXPECT_GT(*addr + 10000 + 4096, 64ull << 20);

    kernel.initrd_addr_max = 0x2fffffff;  // below memory end: respected
    auto big_mem = make_memory(1024);
    auto capped = initrd_address(big_mem, kernel, 4096);
    ASSERT_TRUE(capped);
    EXPECT_LE(*capped + 4096, 0x30000000u);

    kernel.initrd_addr_max = 0xffffffff;
    auto overlapping = initrd_address(mem, kernel, 63ull << 20);
    ASSERT_FALSE(overlapping);
    EXPECT_NE(overlapping.error().message.find("raise mem_size_mib"), std::string::npos);
}

TEST(Pvh, StartInfoPointsAtTheMemoryMapCmdlineAndModule) {
    auto mem = make_memory(64);
    auto e820 = e820_map(mem.regions());
    BootInfo info{e820, 10, InitrdPlacement{0x3000000, 0x1000}};
    ASSERT_TRUE(write_pvh_start_info(mem, info));
    EXPECT_EQ(*mem.read_obj<uint32_t>(kPvhStartInfoAddr), 0x336ec578u);  // magic
    EXPECT_EQ(*mem.read_obj<uint32_t>(kPvhStartInfoAddr + 12), 1u);      // nr_modules
    EXPECT_EQ(*mem.read_obj<uint64_t>(kPvhStartInfoAddr + 24), kCmdlineAddr);
    EXPECT_EQ(*mem.read_obj<uint64_t>(kPvhStartInfoAddr + 40), kPvhMemmapAddr);
    EXPECT_EQ(*mem.read_obj<uint32_t>(kPvhStartInfoAddr + 48), 2u);  // memmap entries
    uint64_t modlist = *mem.read_obj<uint64_t>(kPvhStartInfoAddr + 16);
    EXPECT_EQ(*mem.read_obj<uint64_t>(modlist), 0x3000000u);
    EXPECT_EQ(*mem.read_obj<uint64_t>(kPvhMemmapAddr + 24), kHimemStart);  // second entry's addr
}

}  // namespace
}  // namespace ember::x86
