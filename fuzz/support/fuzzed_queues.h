// What a hostile guest controls of a virtio device, laid out from fuzzer bytes: guest memory in two
// regions with a gap between them (so buffers can straddle a hole or run off an end), and up to two
// queues whose geometry and positions the input chooses. The rest of the input is written over
// guest memory from address 0, where the queues' descriptor tables and rings lie: short inputs
// reach the rings first, and any descriptor, index or flag a driver could write is fair game.
#pragma once

#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "core/memory/guest_memory.h"
#include "virtio/queue/queue.h"

namespace ember::fuzz {

// Small, because every input starts from zeroed memory.
inline constexpr uint64_t kLowRegionBytes = 32 << 10;
inline constexpr uint64_t kHighRegionBase = 64 << 10;
inline constexpr uint64_t kHighRegionBytes = 8 << 10;
// Each queue's table and rings take this much from address k * kQueueSpan up: a 256-entry queue
// fits (4096 + 518 + 2054 bytes).
inline constexpr uint64_t kQueueSpan = 0x2000;

inline GuestMemory make_guest_memory() {
    const MemoryRegionSpec specs[] = {{0, kLowRegionBytes}, {kHighRegionBase, kHighRegionBytes}};
    return std::move(*GuestMemory::create_anonymous(specs));
}

// True when [addr, addr + len) lies inside one region of `mem`: what every buffer a device is
// handed must satisfy.
inline bool inside_one_region(const GuestMemory& mem, uint64_t addr, uint64_t len) {
    for (const auto& r : mem.regions())
        if (addr >= r.guest_addr && len <= r.size() && addr - r.guest_addr <= r.size() - len)
            return true;
    return false;
}

// The queue's state as a driver would leave it after setting it up: a power-of-two size, the
// table and rings packed from `base`, and positions (the device's, as a restore could bring
// them) from the input.
inline virtio::QueueState fuzzed_queue(FuzzedDataProvider& in, uint64_t base) {
    virtio::QueueState s;
    s.size = static_cast<uint16_t>(1u << in.ConsumeIntegralInRange<unsigned>(0, 8));
    const uint8_t flags = in.ConsumeIntegral<uint8_t>();
    s.event_idx = flags & 1;
    s.indirect = flags & 2;
    s.next_avail = in.ConsumeIntegral<uint16_t>();
    s.next_used = in.ConsumeIntegral<uint16_t>();
    s.desc_table = base;
    s.avail_ring = base + 16ull * s.size;
    s.used_ring = (s.avail_ring + 6 + 2ull * s.size + 3) & ~3ull;
    s.ready = true;
    return s;
}

// Zeroes guest memory and writes the input's remaining bytes over it from address 0 on, the low
// region first and then the high one.
inline void fill_guest_memory(const GuestMemory& mem, FuzzedDataProvider& in) {
    std::vector<uint8_t> bytes = in.ConsumeRemainingBytes<uint8_t>();
    std::span<const uint8_t> rest(bytes);
    for (const auto& r : mem.regions()) {
        auto host = *mem.slice(r.guest_addr, r.size());
        const size_t n = std::min<size_t>(rest.size(), host.size());
        if (n) std::memcpy(host.data(), rest.data(), n);
        std::memset(host.data() + n, 0, host.size() - n);
        rest = rest.subspan(n);
    }
}

inline uint16_t avail_idx(const GuestMemory& mem, const virtio::QueueState& s) {
    return mem.read_obj<uint16_t>(s.avail_ring + 2).value_or(0);
}

}  // namespace ember::fuzz
