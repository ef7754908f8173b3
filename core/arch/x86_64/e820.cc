#include "core/arch/x86_64/e820.h"

#include "core/arch/x86_64/layout.h"

namespace ember::x86 {

std::vector<E820Entry> e820_map(std::span<const GuestRegion> regions) {
    std::vector<E820Entry> map;
    for (const auto& r : regions) {
        if (r.guest_addr == 0) {
            // Base memory stops where the MP table begins; the hole up to 1 MiB is not RAM.
            map.push_back({0, kMptableAddr, kE820Ram});
            if (r.end() > kHimemStart)
                map.push_back({kHimemStart, r.end() - kHimemStart, kE820Ram});
        } else {
            map.push_back({r.guest_addr, r.size(), kE820Ram});
        }
    }
    return map;
}

}  // namespace ember::x86
