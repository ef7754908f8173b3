#include <asm/bootparam.h>
#include <gtest/gtest.h>

#include <cstring>

#include "core/arch/x86_64/kernel_loader.h"
#include "tests/unit/test_memory.h"

namespace ember::x86 {
namespace {

using testing::make_memory;
using testing::memfd_with;

// A bzImage-shaped file: boot sector with the setup header at 0x1f1, four setup sectors, then a
// protected-mode "kernel" of recognisable bytes.
std::string make_bzimage(uint16_t version = 0x020f, uint32_t init_size = 0x200000,
                         uint8_t loadflags = LOADED_HIGH, uint16_t xloadflags = XLF_KERNEL_64) {
    std::string file(5 * 512, '\0');
    setup_header hdr{};
    hdr.setup_sects = 4;
    hdr.boot_flag = 0xaa55;
    hdr.jump = 0x6aeb;  // short jump over a 0x6a-byte header
    hdr.header = 0x53726448;
    hdr.version = version;
    hdr.loadflags = loadflags;
    hdr.xloadflags = xloadflags;
    hdr.init_size = init_size;
    hdr.pref_address = 0x1000000;
    hdr.cmdline_size = 4095;
    hdr.initrd_addr_max = 0x7fffffff;
    std::memcpy(&file[0x1f1], &hdr, sizeof hdr);
    file += std::string(4096, '\xcc');
    return file;
}

Result<KernelImage> load(const GuestMemory& mem, const std::string& file) {
    auto fd = memfd_with(file);
    return load_bzimage(mem, fd.get(), file.size());
}

TEST(BzImageLoader, LoadsTheProtectedModeKernelAtOneMiB) {
    auto mem = make_memory(64);
    auto image = load(mem, make_bzimage());
    ASSERT_TRUE(image) << image.error().message;
    EXPECT_EQ(image->protocol, BootProtocol::Linux64);
    EXPECT_EQ(image->entry, 0x100200u);
    EXPECT_EQ(image->end, 0x1000000u + 0x200000u);  // decompresses at pref_address
    EXPECT_EQ(image->cmdline_max, 4096u);
    EXPECT_EQ(image->initrd_addr_max, 0x7fffffffu);
    EXPECT_EQ(*mem.read_obj<uint8_t>(0x100000), 0xcc);
    EXPECT_EQ(*mem.read_obj<uint8_t>(0x100fff), 0xcc);
    // The zero page gets the file's setup header.
    ASSERT_GE(image->setup_header.size(), offsetof(setup_header, init_size));
    setup_header hdr{};
    std::memcpy(&hdr, image->setup_header.data(), std::min(sizeof hdr, image->setup_header.size()));
    EXPECT_EQ(hdr.header, 0x53726448u);
}

TEST(BzImageLoader, RejectsWhatItCannotBoot) {
    auto mem = make_memory(64);
    EXPECT_NE(load(mem, make_bzimage(0x020b)).error().message.find("older than 2.12"),
              std::string::npos);
    EXPECT_NE(load(mem, make_bzimage(0x020f, 0x200000, 0)).error().message.find("not loaded high"),
              std::string::npos);
    EXPECT_NE(load(mem, make_bzimage(0x020f, 0x200000, LOADED_HIGH, 0))
                  .error()
                  .message.find("no 64-bit entry"),
              std::string::npos);
    EXPECT_NE(load(mem, make_bzimage().substr(0, 0x200)).error().message.find("too short"),
              std::string::npos);
    EXPECT_NE(load(mem, make_bzimage().substr(0, 5 * 512))
                  .error()
                  .message.find("no protected-mode kernel"),
              std::string::npos);
    auto huge = load(mem, make_bzimage(0x020f, 0x10000000));
    ASSERT_FALSE(huge);
    EXPECT_NE(huge.error().message.find("kernel needs at least"), std::string::npos)
        << huge.error().message;
    auto overflow = load(mem, make_bzimage(0x020f, 0xffffffff));
    EXPECT_FALSE(overflow);
}

}  // namespace
}  // namespace ember::x86
