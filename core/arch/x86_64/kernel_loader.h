// Puts a guest kernel into guest memory: an ELF vmlinux (Linux 64-bit boot protocol, or PVH when
// the ELF carries Xen's PHYS32_ENTRY note) or a bzImage (boot protocol >= 2.12, 64-bit entry).
// Kernel files come from outside and are checked field by field before a byte is copied.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/base/error.h"
#include "core/memory/guest_memory.h"

namespace ember::x86 {

enum class BootProtocol { Linux64, Pvh };

struct KernelImage {
    BootProtocol protocol = BootProtocol::Linux64;
    uint64_t entry = 0;
    // One past the highest guest physical byte the kernel occupies (or decompresses into).
    uint64_t end = 0;
    // A bzImage's setup header, copied into the zero page as the protocol requires.
    std::vector<uint8_t> setup_header;
    // Longest command line the kernel accepts, terminating NUL included.
    uint64_t cmdline_max = 0;
    // Highest address an initrd may end at; the whole 32-bit space unless the kernel says less.
    uint64_t initrd_addr_max = 0xffffffff;
};

// Both loaders first learn where the kernel goes and fail with the memory it needs, then copy.
Result<KernelImage> load_elf(const GuestMemory& mem, int fd, uint64_t file_size);
Result<KernelImage> load_bzimage(const GuestMemory& mem, int fd, uint64_t file_size);

// Recognises the format by its magic and loads it.
Result<KernelImage> load_kernel(const GuestMemory& mem, const std::string& path);

// "kernel needs N MiB" when [addr, end) is not in guest memory.
Result<void> check_fits(const GuestMemory& mem, uint64_t addr, uint64_t end);

}  // namespace ember::x86
