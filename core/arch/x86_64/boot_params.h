// What the kernel is told at entry: the command line, where the initrd is, and the e820 map,
// written as a Linux zero page (64-bit boot protocol) or a PVH hvm_start_info.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "core/arch/x86_64/e820.h"
#include "core/arch/x86_64/kernel_loader.h"
#include "core/base/error.h"
#include "core/memory/guest_memory.h"

namespace ember::x86 {

struct InitrdPlacement {
    uint64_t addr;
    uint64_t size;
};

struct BootInfo {
    std::span<const E820Entry> e820;
    uint64_t cmdline_size = 0;  // bytes written at kCmdlineAddr, NUL included
    std::optional<InitrdPlacement> initrd;
    uint64_t acpi_rsdp_addr = 0;  // 0: no ACPI tables
};

// Writes the NUL-terminated command line at kCmdlineAddr; an error if it is longer than the
// kernel accepts. Returns the bytes written.
Result<uint64_t> write_cmdline(const GuestMemory& mem, std::string_view cmdline, uint64_t max_size);

// The highest page-aligned address below the end of low RAM (and the kernel's initrd_addr_max)
// where `size` bytes fit without touching the kernel.
Result<uint64_t> initrd_address(const GuestMemory& mem, const KernelImage& kernel, uint64_t size);

// Reads an initrd file into guest memory at initrd_address().
Result<InitrdPlacement> load_initrd(const GuestMemory& mem, const KernelImage& kernel,
                                    const std::string& path);

Result<void> write_zero_page(const GuestMemory& mem, const KernelImage& kernel,
                             const BootInfo& info);
Result<void> write_pvh_start_info(const GuestMemory& mem, const BootInfo& info);

}  // namespace ember::x86
