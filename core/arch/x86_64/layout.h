// core/arch/x86_64: everything x86-64 specific about building a bootable guest: where things live
// in guest physical memory, kernel loaders, boot parameters, CPU state at entry, CPUID, MSRs, MP
// table.
#pragma once

#include <cstdint>
#include <vector>

#include "core/memory/guest_memory.h"

namespace ember::x86 {

// Low memory, below 1 MiB, as the Linux boot protocol and our guests expect it.
inline constexpr uint64_t kGdtAddr = 0x500;
inline constexpr uint64_t kIdtAddr = 0x520;
inline constexpr uint64_t kPvhStartInfoAddr = 0x6000;
inline constexpr uint64_t kPvhMemmapAddr = 0x6100;
inline constexpr uint64_t kZeroPageAddr = 0x7000;
inline constexpr uint64_t kBootStackPointer = 0x8ff0;
inline constexpr uint64_t kPml4Addr = 0x9000;
inline constexpr uint64_t kPdptAddr = 0xa000;
inline constexpr uint64_t kPdAddr = 0xb000;
inline constexpr uint64_t kCmdlineAddr = 0x20000;
// Linux's COMMAND_LINE_SIZE on x86; a bzImage may announce another in its setup header.
inline constexpr uint64_t kCmdlineMaxSize = 2048;
// Linux scans the last KiB of base memory for an MP floating pointer; e820 RAM ends below it.
inline constexpr uint64_t kMptableAddr = 0x9fc00;
inline constexpr uint64_t kEbdaEnd = 0xa0000;
inline constexpr uint64_t kHimemStart = 0x100000;

// The 32-bit MMIO gap: device slots, IOAPIC, LAPIC, and KVM's TSS and identity-map pages.
inline constexpr uint64_t kMmioGapStart = 0xd0000000;
inline constexpr uint64_t kMmioGapEnd = 0x100000000;
inline constexpr uint64_t kMmioSlotSize = 0x1000;
inline constexpr uint32_t kFirstMmioGsi = 5;
inline constexpr uint32_t kLastGsi = 23;
inline constexpr uint64_t kIoapicAddr = 0xfec00000;
inline constexpr uint64_t kLapicAddr = 0xfee00000;
inline constexpr uint64_t kIdentityMapAddr = 0xfffbc000;
inline constexpr uint64_t kTssAddr = 0xfffbd000;

inline constexpr uint32_t kMaxVcpus = 32;

// RAM below the MMIO gap, the rest from 4 GiB up.
std::vector<MemoryRegionSpec> ram_regions(uint64_t mem_bytes);

}  // namespace ember::x86
