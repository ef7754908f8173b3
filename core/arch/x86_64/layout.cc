#include "core/arch/x86_64/layout.h"

#include <algorithm>

namespace ember::x86 {

std::vector<MemoryRegionSpec> ram_regions(uint64_t mem_bytes) {
    std::vector<MemoryRegionSpec> regions;
    uint64_t low = std::min(mem_bytes, kMmioGapStart);
    regions.push_back({0, low});
    if (mem_bytes > kMmioGapStart) regions.push_back({kMmioGapEnd, mem_bytes - kMmioGapStart});
    return regions;
}

}  // namespace ember::x86
