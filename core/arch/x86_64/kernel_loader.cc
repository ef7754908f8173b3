#include "core/arch/x86_64/kernel_loader.h"

#include <elf.h>
#include <fcntl.h>

#include <cstring>

#include "core/arch/x86_64/layout.h"
#include "core/base/file_io.h"
#include "core/base/open_file.h"
#include "core/base/unique_fd.h"

namespace ember::x86 {

Result<void> check_fits(const GuestMemory& mem, uint64_t addr, uint64_t end) {
    if (mem.slice(addr, end - addr)) return {};
    constexpr uint64_t kMiB = 1 << 20;
    if (end > kMmioGapStart)
        return fail("kernel would occupy " + hex(addr) + "-" + hex(end) +
                    ", which reaches into the MMIO gap at " + hex(kMmioGapStart));
    return fail("kernel needs at least " + std::to_string((end + kMiB - 1) / kMiB) +
                " MiB of guest memory (it occupies up to " + hex(end) + "); raise mem_size_mib");
}

Result<KernelImage> load_kernel(const GuestMemory& mem, const std::string& path) {
    auto fd = open_file(path, O_RDONLY);
    EMBER_TRY(fd, "kernel " + path);
    auto size = file_size(fd->get());
    EMBER_TRY(size, "kernel " + path);

    uint8_t magic[SELFMAG] = {};
    uint32_t hdrs = 0;
    if (*size >= SELFMAG) (void)pread_exact(fd->get(), magic, 0);
    if (*size >= 0x206)
        (void)pread_exact(fd->get(), std::span(reinterpret_cast<uint8_t*>(&hdrs), 4), 0x202);

    Result<KernelImage> image = fail("is neither an ELF vmlinux nor a bzImage");
    if (std::memcmp(magic, ELFMAG, SELFMAG) == 0)
        image = load_elf(mem, fd->get(), *size);
    else if (hdrs == 0x53726448)
        image = load_bzimage(mem, fd->get(), *size);
    EMBER_TRY(image, "kernel " + path);
    return image;
}

}  // namespace ember::x86
