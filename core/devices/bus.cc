#include "core/devices/bus.h"

#include <algorithm>

#include "core/base/hex.h"

namespace ember {

Result<void> Bus::insert(BusDevice& device, uint64_t base, uint64_t length) {
    if (length == 0 || base + length < base)
        return fail("bus range at " + hex(base) + " is empty or wraps");
    auto it = std::lower_bound(ranges_.begin(), ranges_.end(), base,
                               [](const Range& r, uint64_t b) { return r.base < b; });
    if (it != ranges_.end() && it->base < base + length)
        return fail("bus range " + hex(base) + "+" + hex(length) + " overlaps a device at " +
                    hex(it->base));
    if (it != ranges_.begin() && std::prev(it)->base + std::prev(it)->length > base)
        return fail("bus range " + hex(base) + "+" + hex(length) + " overlaps a device at " +
                    hex(std::prev(it)->base));
    ranges_.insert(it, Range{base, length, &device});
    return {};
}

const Bus::Range* Bus::find(uint64_t addr, uint64_t length) const {
    auto it = std::upper_bound(ranges_.begin(), ranges_.end(), addr,
                               [](uint64_t a, const Range& r) { return a < r.base; });
    if (it == ranges_.begin()) return nullptr;
    const Range& r = *std::prev(it);
    uint64_t offset = addr - r.base;
    if (offset >= r.length || length > r.length - offset) return nullptr;
    return &r;
}

bool Bus::read(uint64_t addr, std::span<uint8_t> data) const {
    const Range* r = find(addr, data.size());
    if (r == nullptr) return false;
    r->device->read(addr - r->base, data);
    return true;
}

bool Bus::write(uint64_t addr, std::span<const uint8_t> data) const {
    const Range* r = find(addr, data.size());
    if (r == nullptr) return false;
    r->device->write(addr - r->base, data);
    return true;
}

}  // namespace ember
