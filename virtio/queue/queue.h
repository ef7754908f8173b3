// virtio/queue: the split virtqueue as the device sees it. A hostile guest writes the descriptor
// table and rings: every index, length, address and flag is checked before it is used, and a
// malformed chain is an error value for that chain, never a crash, a hang or an access outside
// guest memory.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "core/base/error.h"
#include "core/memory/guest_memory.h"

namespace ember::virtio {

inline constexpr uint16_t kMaxQueueSize = 256;

// From the virtio 1.x split-ring layout (linux/virtio_ring.h is not valid C++).
inline constexpr uint16_t kDescFNext = 1;
inline constexpr uint16_t kDescFWrite = 2;
inline constexpr uint16_t kDescFIndirect = 4;
inline constexpr uint16_t kAvailFNoInterrupt = 1;
inline constexpr uint32_t kRingFIndirectDesc = 28;
inline constexpr uint32_t kRingFEventIdx = 29;
// Bounds a whole chain, direct and indirect descriptors together.
inline constexpr size_t kMaxChainDescriptors = 2 * kMaxQueueSize;

// vring_need_event (VIRTIO_RING_F_EVENT_IDX): a side that moved its index from `before` to `now`
// notifies the other if the event index the other asked for lies in (before, now].
constexpr bool need_event(uint16_t event, uint16_t now, uint16_t before) {
    return static_cast<uint16_t>(now - event - 1) < static_cast<uint16_t>(now - before);
}

// Everything the guest configured and the device advanced: enough to rebuild the queue.
struct QueueState {
    uint16_t max_size = kMaxQueueSize;
    uint16_t size = kMaxQueueSize;
    bool ready = false;
    uint64_t desc_table = 0;
    uint64_t avail_ring = 0;
    uint64_t used_ring = 0;
    uint16_t next_avail = 0;
    uint16_t next_used = 0;
    bool event_idx = false;  // VIRTIO_RING_F_EVENT_IDX negotiated
    bool indirect = false;   // VIRTIO_RING_F_INDIRECT_DESC negotiated
};

struct Descriptor {
    uint64_t addr;
    uint32_t len;
    bool device_writable;

    bool operator==(const Descriptor&) const = default;
};

// One request's buffers: the device-readable ones first, then the device-writable ones.
struct DescriptorChain {
    uint16_t head = 0;
    std::vector<Descriptor> descriptors;
    size_t readable_count = 0;

    std::span<const Descriptor> readable() const { return {descriptors.data(), readable_count}; }
    std::span<const Descriptor> writable() const {
        return std::span<const Descriptor>(descriptors).subspan(readable_count);
    }

    bool operator==(const DescriptorChain&) const = default;
};

// What the next available-ring entry held: its head (to return with add_used even when the chain
// is malformed, so the driver gets its descriptors back) and the chain or why it is unusable.
struct AvailableChain {
    uint16_t head;
    Result<DescriptorChain> chain;
};

// As AvailableChain, for pop_into(): the chain went into the caller's DescriptorChain.
struct AvailableHead {
    uint16_t head;
    Result<void> chain;  // why the chain is unusable; its descriptors then mean nothing
};

class Queue {
  public:
    Queue() = default;
    explicit Queue(QueueState state) : s_(state) {}

    // Called when the driver sets the queue ready: size a power of two up to max_size, rings
    // aligned and wholly inside guest memory.
    Result<void> validate(const GuestMemory& mem) const;

    // The next available chain, or nothing when the driver has posted none. An error when the
    // available ring itself is corrupt (its index ran ahead by more than the queue size): the
    // queue is then broken until the driver resets the device.
    Result<std::optional<AvailableChain>> pop(const GuestMemory& mem);
    // As pop(), walking the chain into `chain`, whose storage is reused: a device that pops a
    // chain per frame allocates nothing for it.
    Result<std::optional<AvailableHead>> pop_into(const GuestMemory& mem, DescriptorChain& chain);
    // Puts a chain back at the front: the device could not take it now (e.g. rate-limited).
    void undo_pop() { --s_.next_avail; }

    // Returns a chain to the driver with `len` bytes written into its buffers.
    Result<void> add_used(const GuestMemory& mem, uint16_t head, uint32_t len);

    // Whether the driver asked to be interrupted for the used entries added since the last
    // call: EVENT_IDX's used_event when negotiated, else the avail ring's NO_INTERRUPT flag.
    bool needs_notification(const GuestMemory& mem);

    // With EVENT_IDX: asks the driver to kick when it posts past what it has posted so far.
    // Returns true when chains are posted that the device has not taken (some may have come
    // meanwhile), so the device should go round again; never for a broken queue.
    bool enable_notification(const GuestMemory& mem);

    // Chains the driver has made available and pop() has not taken yet, as its index says (a
    // hostile driver can claim up to 65535: a bound for how much to take, never a promise).
    uint16_t available(const GuestMemory& mem) const {
        return static_cast<uint16_t>(avail_idx(mem) - s_.next_avail);
    }
    const QueueState& state() const { return s_; }
    QueueState& state() { return s_; }
    bool broken() const { return broken_; }

  private:
    Result<void> walk(const GuestMemory& mem, uint16_t head, DescriptorChain& chain) const;
    uint16_t avail_idx(const GuestMemory& mem) const;

    QueueState s_;
    bool broken_ = false;
    uint16_t signalled_used_ = 0;
    bool signalled_used_valid_ = false;
};

}  // namespace ember::virtio
