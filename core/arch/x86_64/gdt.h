// The boot GDT and the KVM segment registers that match it. The GDT lives in guest memory too:
// a guest that reloads a segment register gets what KVM was told.
#pragma once

#include <linux/kvm.h>

#include <array>
#include <cstdint>

#include "core/base/error.h"
#include "core/memory/guest_memory.h"

namespace ember::x86 {

// Packs a descriptor from (flags, base, limit) as the Intel SDM lays it out.
constexpr uint64_t gdt_entry(uint16_t flags, uint32_t base, uint32_t limit) {
    return ((uint64_t{base} & 0xff000000) << 32) | ((uint64_t{flags} & 0xf0ff) << 40) |
           ((uint64_t{limit} & 0x000f0000) << 32) | ((uint64_t{base} & 0x00ffffff) << 16) |
           (uint64_t{limit} & 0x0000ffff);
}

kvm_segment segment_from_gdt_entry(uint64_t entry, uint8_t table_index);

enum class CpuMode { Long64, Protected32 };

// Null, code, data, TSS; code is 64-bit for Long64 and 32-bit flat for Protected32 (PVH).
std::array<uint64_t, 4> boot_gdt(CpuMode mode);

inline constexpr uint8_t kCodeIndex = 1;
inline constexpr uint8_t kDataIndex = 2;
inline constexpr uint8_t kTssIndex = 3;

Result<void> write_gdt(const GuestMemory& mem, const std::array<uint64_t, 4>& gdt);

}  // namespace ember::x86
