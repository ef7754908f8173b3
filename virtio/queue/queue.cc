#include "virtio/queue/queue.h"

#include <atomic>
#include <cstring>

#include "core/base/hex.h"

namespace ember::virtio {
namespace {

constexpr uint64_t kDescSize = 16;

struct RawDescriptor {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};
static_assert(sizeof(RawDescriptor) == kDescSize);

uint64_t avail_bytes(uint16_t size) {
    return 4 + 2ull * size + 2;
}
uint64_t used_bytes(uint16_t size) {
    return 4 + 8ull * size + 2;
}

// Walks one descriptor table from `index`. `table_size` entries; indirect tables may not nest.
Result<void> walk_table(const GuestMemory& mem, uint64_t table, uint32_t table_size, uint16_t index,
                        bool allow_indirect, DescriptorChain& chain) {
    for (uint32_t visited = 0;; ++visited) {
        if (index >= table_size)
            return fail("descriptor index " + std::to_string(index) +
                        " is out of range (table of " + std::to_string(table_size) + ")");
        if (visited >= table_size)
            return fail("descriptor chain loops or is longer than its table");
        auto raw = mem.read_obj<RawDescriptor>(table + index * kDescSize);
        EMBER_TRY(raw);
        if (raw->flags & kDescFIndirect) {
            if (!allow_indirect) return fail("indirect descriptor where none is allowed");
            if (raw->flags & kDescFNext) return fail("indirect descriptor also has NEXT set");
            if (raw->len == 0 || raw->len % kDescSize != 0)
                return fail("indirect table length " + std::to_string(raw->len) +
                            " is not a multiple of 16");
            uint32_t entries = raw->len / kDescSize;
            if (entries > kMaxQueueSize)
                return fail("indirect table of " + std::to_string(entries) + " entries");
            if (auto table_mem = mem.slice(raw->addr, raw->len); !table_mem)
                return fail("indirect table: " + table_mem.error().message);
            return walk_table(mem, raw->addr, entries, 0, false, chain);
        }
        if (chain.descriptors.size() >= kMaxChainDescriptors)
            return fail("descriptor chain is too long");
        if (auto buf = mem.slice(raw->addr, raw->len); !buf)
            return fail("descriptor buffer: " + buf.error().message);
        bool writable = raw->flags & kDescFWrite;
        if (!writable && chain.readable_count != chain.descriptors.size())
            return fail("device-readable descriptor after a device-writable one");
        chain.descriptors.push_back(Descriptor{raw->addr, raw->len, writable});
        if (!writable) ++chain.readable_count;
        if (!(raw->flags & kDescFNext)) return {};
        index = raw->next;
    }
}

}  // namespace

Result<void> Queue::validate(const GuestMemory& mem) const {
    if (s_.size == 0 || s_.size > s_.max_size || (s_.size & (s_.size - 1)) != 0)
        return fail("queue size " + std::to_string(s_.size) + " is not a power of two up to " +
                    std::to_string(s_.max_size));
    if (s_.desc_table % 16 || s_.avail_ring % 2 || s_.used_ring % 4)
        return fail("queue rings are misaligned");
    if (auto r = mem.slice(s_.desc_table, kDescSize * s_.size); !r)
        return fail("descriptor table: " + r.error().message);
    if (auto r = mem.slice(s_.avail_ring, avail_bytes(s_.size)); !r)
        return fail("available ring: " + r.error().message);
    if (auto r = mem.slice(s_.used_ring, used_bytes(s_.size)); !r)
        return fail("used ring: " + r.error().message);
    return {};
}

uint16_t Queue::avail_idx(const GuestMemory& mem) const {
    uint16_t idx = mem.read_obj<uint16_t>(s_.avail_ring + 2).value_or(s_.next_avail);
    // Entries up to idx were written before idx: read them only after it.
    std::atomic_thread_fence(std::memory_order_acquire);
    return idx;
}

Result<void> Queue::walk(const GuestMemory& mem, uint16_t head, DescriptorChain& chain) const {
    chain.head = head;
    chain.descriptors.clear();
    chain.readable_count = 0;
    return walk_table(mem, s_.desc_table, s_.size, head, s_.indirect, chain);
}

Result<std::optional<AvailableChain>> Queue::pop(const GuestMemory& mem) {
    DescriptorChain chain;
    auto popped = pop_into(mem, chain);
    EMBER_TRY(popped);
    if (!*popped) return std::nullopt;
    auto& [head, walked] = **popped;
    if (!walked) return AvailableChain{head, std::unexpected(std::move(walked.error()))};
    return AvailableChain{head, std::move(chain)};
}

Result<std::optional<AvailableHead>> Queue::pop_into(const GuestMemory& mem,
                                                     DescriptorChain& chain) {
    if (broken_) return std::nullopt;
    uint16_t idx = avail_idx(mem);
    uint16_t pending = static_cast<uint16_t>(idx - s_.next_avail);
    if (pending == 0) return std::nullopt;
    if (pending > s_.size) {
        broken_ = true;
        return fail(
            "available ring index " + std::to_string(idx) + " ran " + std::to_string(pending) +
            " entries ahead of the device, more than the queue's " + std::to_string(s_.size));
    }
    auto head = mem.read_obj<uint16_t>(s_.avail_ring + 4 + 2ull * (s_.next_avail % s_.size));
    EMBER_TRY(head);
    ++s_.next_avail;
    return AvailableHead{*head, walk(mem, *head, chain)};
}

Result<void> Queue::add_used(const GuestMemory& mem, uint16_t head, uint32_t len) {
    if (head >= s_.size) return fail("used head " + std::to_string(head) + " is out of range");
    uint64_t elem = s_.used_ring + 4 + 8ull * (s_.next_used % s_.size);
    EMBER_TRY(mem.write_obj<uint32_t>(elem, head));
    EMBER_TRY(mem.write_obj<uint32_t>(elem + 4, len));
    ++s_.next_used;
    // The element must be visible before the index that publishes it.
    std::atomic_thread_fence(std::memory_order_release);
    return mem.write_obj<uint16_t>(s_.used_ring + 2, s_.next_used);
}

bool Queue::needs_notification(const GuestMemory& mem) {
    // Our used index store must be ordered before we read the driver's suppression state.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    uint16_t old_used = signalled_used_;
    uint16_t new_used = s_.next_used;
    bool valid = signalled_used_valid_;
    signalled_used_ = new_used;
    signalled_used_valid_ = true;
    if (!s_.event_idx) {
        uint16_t flags = mem.read_obj<uint16_t>(s_.avail_ring).value_or(0);
        return !(flags & kAvailFNoInterrupt);
    }
    if (!valid) return true;
    uint16_t used_event = mem.read_obj<uint16_t>(s_.avail_ring + 4 + 2ull * s_.size).value_or(0);
    return need_event(used_event, new_used, old_used);
}

bool Queue::enable_notification(const GuestMemory& mem) {
    // A broken queue hands out nothing more: "go round again" would spin its device for ever.
    if (!s_.event_idx || broken_) return false;
    // The driver kicks only when its avail index moves past avail_event, so publish the index
    // it has reached, not the device's position: a device that left chains posted (too few
    // for an RX frame) would otherwise be asking for a kick the driver has already passed.
    // Re-read after the store until the index stands still, so nothing posted meanwhile is
    // behind the published value.
    uint16_t seen = avail_idx(mem);
    for (;;) {
        (void)mem.write_obj<uint16_t>(s_.used_ring + 4 + 8ull * s_.size, seen);
        std::atomic_thread_fence(std::memory_order_seq_cst);
        uint16_t now = avail_idx(mem);
        if (now == seen) break;
        seen = now;
    }
    return seen != s_.next_avail;
}

}  // namespace ember::virtio
