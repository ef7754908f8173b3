// The guest's e820 map: RAM below the MP table, RAM from 1 MiB to the MMIO gap, RAM above 4 GiB.
#pragma once

#include <asm/bootparam.h>

#include <cstdint>
#include <span>
#include <vector>

#include "core/memory/guest_memory.h"

namespace ember::x86 {

struct E820Entry {
    uint64_t addr;
    uint64_t size;
    uint32_t type;
};

inline constexpr uint32_t kE820Ram = 1;
inline constexpr uint32_t kE820Reserved = 2;

std::vector<E820Entry> e820_map(std::span<const GuestRegion> regions);

}  // namespace ember::x86
