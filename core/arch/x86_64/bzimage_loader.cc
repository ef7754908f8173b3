#include <asm/bootparam.h>

#include <algorithm>

#include "core/arch/x86_64/kernel_loader.h"
#include "core/arch/x86_64/layout.h"
#include "core/base/file_io.h"

namespace ember::x86 {
namespace {

constexpr uint64_t kSetupHeaderOffset = 0x1f1;
constexpr uint32_t kHdrsMagic = 0x53726448;  // "HdrS"
constexpr uint16_t kMinProtocol = 0x020c;
constexpr uint64_t kStartup64Offset = 0x200;

}  // namespace

Result<KernelImage> load_bzimage(const GuestMemory& mem, int fd, uint64_t file_size) {
    setup_header hdr;
    if (file_size < kSetupHeaderOffset + sizeof hdr)
        return fail("bzImage too short for its setup header");
    EMBER_TRY(pread_exact(fd, std::span(reinterpret_cast<uint8_t*>(&hdr), sizeof hdr),
                          kSetupHeaderOffset));
    if (hdr.header != kHdrsMagic) return fail("not a bzImage (no HdrS signature)");
    if (hdr.boot_flag != 0xaa55) return fail("bzImage boot flag is not 0xaa55");
    if (hdr.version < kMinProtocol)
        return fail("bzImage boot protocol " + hex(hdr.version) + " is older than 2.12");
    if (!(hdr.loadflags & LOADED_HIGH))
        return fail("bzImage is not loaded high (zImage is unsupported)");
    if (!(hdr.xloadflags & XLF_KERNEL_64)) return fail("bzImage has no 64-bit entry point");

    uint64_t setup_sects = hdr.setup_sects == 0 ? 4 : hdr.setup_sects;
    uint64_t kernel_offset = (setup_sects + 1) * 512;
    if (kernel_offset >= file_size)
        return fail("bzImage has no protected-mode kernel after its setup code");
    uint64_t kernel_size = file_size - kernel_offset;

    // The header's own length is given by the byte at 0x201 (the jump's offset) plus 0x202.
    uint8_t jump_len = 0;
    EMBER_TRY(pread_exact(fd, std::span(&jump_len, 1), 0x201));
    uint64_t header_len = std::min<uint64_t>(sizeof hdr, 0x202 + jump_len - kSetupHeaderOffset);

    KernelImage image;
    image.protocol = BootProtocol::Linux64;
    const uint64_t load_addr = kHimemStart;
    image.entry = load_addr + kStartup64Offset;
    // The decompressor writes the kernel at pref_address (or where it was loaded, if above) and
    // needs init_size bytes there.
    uint64_t decompress_at = std::max<uint64_t>(load_addr, hdr.pref_address);
    if (decompress_at + hdr.init_size < decompress_at) return fail("bzImage init_size overflows");
    image.end = std::max(load_addr + kernel_size, decompress_at + hdr.init_size);
    image.cmdline_max = hdr.cmdline_size ? uint64_t{hdr.cmdline_size} + 1 : kCmdlineMaxSize;
    image.initrd_addr_max = hdr.initrd_addr_max ? hdr.initrd_addr_max : 0x37ffffff;
    image.setup_header.assign(reinterpret_cast<const uint8_t*>(&hdr),
                              reinterpret_cast<const uint8_t*>(&hdr) + header_len);
    EMBER_TRY(check_fits(mem, load_addr, image.end));

    auto dest = mem.slice(load_addr, kernel_size);
    EMBER_TRY(dest);
    EMBER_TRY(pread_exact(fd, *dest, kernel_offset));
    return image;
}

}  // namespace ember::x86
