// core/memory: the guest's RAM as host mappings, and the only way to reach it. Every access names a
// guest physical address and a length and is checked against the regions: a guest address never
// becomes a host pointer without that check, and no access crosses a region edge.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "core/base/error.h"
#include "core/base/hex.h"
#include "core/base/mapping.h"

namespace ember {

// The unit of dirty tracking, snapshot memory files and KVM's dirty log.
inline constexpr uint64_t kGuestPageSize = 4096;

struct MemoryRegionSpec {
    uint64_t guest_addr;
    uint64_t size;
};

struct GuestRegion {
    uint64_t guest_addr;
    Mapping mapping;

    uint64_t size() const { return mapping.size(); }
    uint64_t end() const { return guest_addr + mapping.size(); }
};

class GuestMemory {
  public:
    // Anonymous, MAP_NORESERVE: the host commits a page only when the guest first touches it.
    // Regions must be page-aligned, non-empty, sorted and non-overlapping. With a `page_size`
    // above the host's, hugetlb pages of that size, reserved from the host's pool as the memory
    // is mapped: a pool too small fails here, where MAP_NORESERVE would SIGBUS the guest later.
    static Result<GuestMemory> create_anonymous(std::span<const MemoryRegionSpec> specs,
                                                uint64_t page_size = kGuestPageSize);

    // The regions mapped MAP_PRIVATE from `fd`, back to back from offset 0: restore costs a
    // mapping, not a copy, and pages are read from the file only when the guest touches them.
    static Result<GuestMemory> map_file(std::span<const MemoryRegionSpec> specs, int fd);

    const std::vector<GuestRegion>& regions() const { return regions_; }
    // At the end, where devices left I/O in flight into the guest's pages: the memory is given
    // back and its addresses stay reserved until the process exits (Mapping::retire). The
    // memory has no regions after it.
    void retire();
    // Forgets its mappings without unmapping them: for addresses that a MAP_FIXED over them which
    // failed may already have unmapped, where another thread's mapping may be by now. The memory
    // has no regions after it.
    void abandon();
    uint64_t total_size() const;
    // 4 KiB, or the hugetlb page size the memory was made with.
    uint64_t page_size() const { return page_size_; }

    // The host bytes for [addr, addr + len); an error if any byte is outside one region.
    // Defined here, as read() and write() are: devices check each ring entry and buffer through
    // them, several times a frame, and a call each cost more than the check (perf/net).
    Result<std::span<uint8_t>> slice(uint64_t addr, uint64_t len) const {
        for (const auto& r : regions_) {
            if (addr < r.guest_addr || addr >= r.end()) continue;
            const uint64_t offset = addr - r.guest_addr;
            if (len > r.size() - offset) return past_region(addr, len, r);
            return std::span<uint8_t>(r.mapping.data() + offset, len);
        }
        return outside(addr);
    }

    Result<void> read(uint64_t addr, std::span<uint8_t> out) const {
        auto s = slice(addr, out.size());
        EMBER_TRY(s);
        if (!out.empty()) std::memcpy(out.data(), s->data(), out.size());
        return {};
    }
    Result<void> write(uint64_t addr, std::span<const uint8_t> data) const {
        auto s = slice(addr, data.size());
        EMBER_TRY(s);
        if (!data.empty()) std::memcpy(s->data(), data.data(), data.size());
        if (!dirty_.empty()) mark_dirty(addr, data.size());
        return {};
    }

    // Pages ember itself writes (devices filling guest buffers) are remembered for Diff snapshots
    // once tracking is on; KVM's dirty log covers what the guest writes.
    void enable_dirty_tracking() const;
    bool tracking_dirty() const { return !dirty_.empty(); }
    void mark_dirty(uint64_t addr, uint64_t len) const;
    // The region's bitmap (a bit per 4 KiB page), cleared as it is taken.
    std::vector<uint64_t> take_dirty(size_t region) const;

    template <typename T>
    Result<T> read_obj(uint64_t addr) const {
        static_assert(std::is_trivially_copyable_v<T>);
        T value{};  // read() fills it or fails; GCC cannot see that once read() is inlined
        auto r = read(addr, std::span(reinterpret_cast<uint8_t*>(&value), sizeof value));
        EMBER_TRY(r);
        return value;
    }
    template <typename T>
    Result<void> write_obj(uint64_t addr, const T& value) const {
        static_assert(std::is_trivially_copyable_v<T>);
        return write(addr, std::span(reinterpret_cast<const uint8_t*>(&value), sizeof value));
    }

  private:
    // slice()'s errors, made out of line.
    static std::unexpected<Error> past_region(uint64_t addr, uint64_t len, const GuestRegion& r);
    static std::unexpected<Error> outside(uint64_t addr);

    GuestMemory(std::vector<GuestRegion> regions, uint64_t page_size)
        : regions_(std::move(regions)), page_size_(page_size) {}
    std::vector<GuestRegion> regions_;
    uint64_t page_size_;
    // Tracking metadata, not guest state: written from the VMM thread even through a const view.
    mutable std::vector<std::vector<uint64_t>> dirty_;
};

}  // namespace ember
