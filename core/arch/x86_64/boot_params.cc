#include "core/arch/x86_64/boot_params.h"

#include <asm/bootparam.h>
#include <fcntl.h>

#include <algorithm>
#include <cstring>

#include "core/arch/x86_64/layout.h"
#include "core/base/file_io.h"
#include "core/base/open_file.h"
#include "core/base/unique_fd.h"

namespace ember::x86 {
namespace {

constexpr uint32_t kHdrsMagic = 0x53726448;
constexpr uint8_t kLoaderTypeUndefined = 0xff;
constexpr uint32_t kKernelAlignment = 0x1000000;
constexpr uint64_t kPage = 4096;

// The PVH boot ABI (xen/include/public/arch-x86/hvm/start_info.h), version 1.
struct HvmStartInfo {
    uint32_t magic;
    uint32_t version;
    uint32_t flags;
    uint32_t nr_modules;
    uint64_t modlist_paddr;
    uint64_t cmdline_paddr;
    uint64_t rsdp_paddr;
    uint64_t memmap_paddr;
    uint32_t memmap_entries;
    uint32_t reserved;
};
struct HvmModlistEntry {
    uint64_t paddr;
    uint64_t size;
    uint64_t cmdline_paddr;
    uint64_t reserved;
};
struct HvmMemmapEntry {
    uint64_t addr;
    uint64_t size;
    uint32_t type;
    uint32_t reserved;
};
constexpr uint32_t kHvmStartMagic = 0x336ec578;
static_assert(sizeof(HvmStartInfo) == 56);

}  // namespace

Result<uint64_t> write_cmdline(const GuestMemory& mem, std::string_view cmdline,
                               uint64_t max_size) {
    if (cmdline.find('\0') != std::string_view::npos)
        return fail("kernel command line contains a NUL byte");
    if (cmdline.size() + 1 > max_size)
        return fail("kernel command line is " + std::to_string(cmdline.size()) +
                    " bytes; the kernel accepts at most " + std::to_string(max_size - 1));
    auto dest = mem.slice(kCmdlineAddr, cmdline.size() + 1);
    EMBER_TRY(dest);
    std::memcpy(dest->data(), cmdline.data(), cmdline.size());
    (*dest)[cmdline.size()] = 0;
    return cmdline.size() + 1;
}

Result<uint64_t> initrd_address(const GuestMemory& mem, const KernelImage& kernel, uint64_t size) {
    const auto& low = mem.regions().front();
    uint64_t top = std::min<uint64_t>(low.end(), kernel.initrd_addr_max + 1);
    if (size > top)
        return fail("initrd of " + std::to_string(size) + " bytes does not fit in low memory");
    uint64_t addr = (top - size) & ~(kPage - 1);
    if (addr < kernel.end)
        return fail(
            "initrd of " + std::to_string(size >> 20) +
            " MiB does not fit between the kernel and the end of low memory; raise mem_size_mib");
    return addr;
}

Result<InitrdPlacement> load_initrd(const GuestMemory& mem, const KernelImage& kernel,
                                    const std::string& path) {
    auto fd = open_file(path, O_RDONLY);
    EMBER_TRY(fd, "initrd " + path);
    auto size = file_size(fd->get());
    EMBER_TRY(size, "initrd " + path);
    if (*size == 0) return fail("initrd " + path + ": file is empty");
    auto addr = initrd_address(mem, kernel, *size);
    EMBER_TRY(addr, "initrd " + path);
    auto dest = mem.slice(*addr, *size);
    EMBER_TRY(dest);
    EMBER_TRY(pread_exact(fd->get(), *dest, 0), "initrd " + path);
    return InitrdPlacement{*addr, *size};
}

Result<void> write_zero_page(const GuestMemory& mem, const KernelImage& kernel,
                             const BootInfo& info) {
    boot_params params{};
    if (!kernel.setup_header.empty())
        std::memcpy(&params.hdr, kernel.setup_header.data(),
                    std::min(kernel.setup_header.size(), sizeof params.hdr));
    params.hdr.type_of_loader = kLoaderTypeUndefined;
    params.hdr.boot_flag = 0xaa55;
    params.hdr.header = kHdrsMagic;
    params.hdr.cmd_line_ptr = static_cast<uint32_t>(kCmdlineAddr);
    params.hdr.cmdline_size = static_cast<uint32_t>(info.cmdline_size ? info.cmdline_size - 1 : 0);
    if (kernel.setup_header.empty()) params.hdr.kernel_alignment = kKernelAlignment;
    if (info.initrd) {
        params.hdr.ramdisk_image = static_cast<uint32_t>(info.initrd->addr);
        params.hdr.ramdisk_size = static_cast<uint32_t>(info.initrd->size);
    }
    if (info.e820.size() > E820_MAX_ENTRIES_ZEROPAGE) return fail("too many e820 entries");
    for (size_t i = 0; i < info.e820.size(); ++i) {
        params.e820_table[i].addr = info.e820[i].addr;
        params.e820_table[i].size = info.e820[i].size;
        params.e820_table[i].type = info.e820[i].type;
    }
    params.e820_entries = static_cast<uint8_t>(info.e820.size());
    // Read from boot protocol 2.14 on; older kernels find the RSDP by scanning 0xe0000-0xfffff.
    params.acpi_rsdp_addr = info.acpi_rsdp_addr;
    return mem.write_obj(kZeroPageAddr, params);
}

Result<void> write_pvh_start_info(const GuestMemory& mem, const BootInfo& info) {
    HvmStartInfo start{};
    start.magic = kHvmStartMagic;
    start.version = 1;
    start.cmdline_paddr = kCmdlineAddr;
    start.memmap_paddr = kPvhMemmapAddr;
    start.memmap_entries = static_cast<uint32_t>(info.e820.size());
    start.rsdp_paddr = info.acpi_rsdp_addr;
    uint64_t cursor = kPvhMemmapAddr;
    for (const auto& e : info.e820) {
        HvmMemmapEntry entry{e.addr, e.size, e.type, 0};
        EMBER_TRY(mem.write_obj(cursor, entry));
        cursor += sizeof entry;
    }
    if (info.initrd) {
        HvmModlistEntry module{info.initrd->addr, info.initrd->size, 0, 0};
        start.nr_modules = 1;
        start.modlist_paddr = cursor;
        EMBER_TRY(mem.write_obj(cursor, module));
        cursor += sizeof module;
    }
    if (cursor > kZeroPageAddr) return fail("PVH start info overflows its page");
    return mem.write_obj(kPvhStartInfoAddr, start);
}

}  // namespace ember::x86
