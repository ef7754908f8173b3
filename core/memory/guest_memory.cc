#include "core/memory/guest_memory.h"

#include <linux/mman.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <bit>

namespace ember {
namespace {

// KVM maps a guest range with one large page only where its host address and guest address agree
// modulo the large page's size, and the kernel maps transparent huge pages or large page-cache
// folios whole only at aligned addresses; regions start at multiples of 2 MiB in the guest.
constexpr size_t kHostAlignment = 2 * 1024 * 1024;

}  // namespace

Result<GuestMemory> GuestMemory::create_anonymous(std::span<const MemoryRegionSpec> specs,
                                                  uint64_t page_size) {
    const uint64_t base_page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
    const bool huge = page_size != base_page;
    if (huge && (page_size < base_page || !std::has_single_bit(page_size)))
        return fail("guest memory: no pages of " + std::to_string(page_size) + " bytes");
    const int flags = huge ? MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB |
                                 (std::countr_zero(page_size) << MAP_HUGE_SHIFT)
                           : MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
    std::vector<GuestRegion> regions;
    uint64_t previous_end = 0;
    for (const auto& spec : specs) {
        if (spec.size == 0 || spec.guest_addr % page_size != 0 || spec.size % page_size != 0)
            return fail("guest memory region at " + hex(spec.guest_addr) + " size " +
                        hex(spec.size) + " is empty or not page-aligned");
        if (spec.guest_addr + spec.size < spec.guest_addr)
            return fail("guest memory region at " + hex(spec.guest_addr) + " wraps around");
        if (!regions.empty() && spec.guest_addr < previous_end)
            return fail("guest memory regions overlap or are unsorted at " + hex(spec.guest_addr));
        auto mapping = Mapping::map_aligned(spec.size, std::max(kHostAlignment, page_size),
                                            PROT_READ | PROT_WRITE, flags);
        if (!mapping && huge)
            return fail("guest memory at " + hex(spec.guest_addr) + ": the host's pool of " +
                        std::to_string(page_size >> 20) + " MiB pages cannot give the " +
                        std::to_string(spec.size / page_size) +
                        " pages this region needs (HugePages_Free in /proc/meminfo; raise "
                        "/proc/sys/vm/nr_hugepages): " +
                        mapping.error().message);
        EMBER_TRY(mapping, "guest memory at " + hex(spec.guest_addr));
        previous_end = spec.guest_addr + spec.size;
        regions.push_back(GuestRegion{spec.guest_addr, std::move(*mapping)});
    }
    return GuestMemory(std::move(regions), page_size);
}

Result<GuestMemory> GuestMemory::map_file(std::span<const MemoryRegionSpec> specs, int fd) {
    std::vector<GuestRegion> regions;
    uint64_t offset = 0;
    for (const auto& spec : specs) {
        auto mapping =
            Mapping::map_aligned(spec.size, kHostAlignment, PROT_READ | PROT_WRITE,
                                 MAP_PRIVATE | MAP_NORESERVE, fd, static_cast<off_t>(offset));
        EMBER_TRY(mapping, "memory file");
        regions.push_back(GuestRegion{spec.guest_addr, std::move(*mapping)});
        offset += spec.size;
    }
    return GuestMemory(std::move(regions), kGuestPageSize);
}

void GuestMemory::abandon() {
    for (auto& r : regions_) r.mapping.abandon();
    regions_.clear();
}

void GuestMemory::retire() {
    for (auto& r : regions_) r.mapping.retire();
    regions_.clear();
}

uint64_t GuestMemory::total_size() const {
    uint64_t total = 0;
    for (const auto& r : regions_) total += r.size();
    return total;
}

std::unexpected<Error> GuestMemory::past_region(uint64_t addr, uint64_t len, const GuestRegion& r) {
    return fail("guest range " + hex(addr) + "+" + hex(len) +
                " runs past the end of guest memory region " + hex(r.guest_addr) + "-" +
                hex(r.end()));
}

std::unexpected<Error> GuestMemory::outside(uint64_t addr) {
    // A zero-length access is still an address the guest named; it must be inside memory too.
    return fail("guest address " + hex(addr) + " is not in guest memory");
}

void GuestMemory::enable_dirty_tracking() const {
    if (!dirty_.empty()) return;
    for (const auto& r : regions_) dirty_.emplace_back((r.size() / kGuestPageSize + 63) / 64, 0);
}

void GuestMemory::mark_dirty(uint64_t addr, uint64_t len) const {
    if (dirty_.empty() || len == 0) return;
    for (size_t i = 0; i < regions_.size(); ++i) {
        const auto& r = regions_[i];
        if (addr < r.guest_addr || addr >= r.end()) continue;
        uint64_t first = (addr - r.guest_addr) / kGuestPageSize;
        uint64_t last = (std::min(addr + len, r.end()) - 1 - r.guest_addr) / kGuestPageSize;
        for (uint64_t p = first; p <= last; ++p) dirty_[i][p / 64] |= 1ull << (p % 64);
        return;
    }
}

std::vector<uint64_t> GuestMemory::take_dirty(size_t region) const {
    if (dirty_.empty()) return {};
    std::vector<uint64_t> out(dirty_[region].size(), 0);
    out.swap(dirty_[region]);
    return out;
}

}  // namespace ember
