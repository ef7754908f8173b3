// Whether a device gave back every chain it took: the available-ring entries a device is about to
// consume are read before it runs, so that afterwards its used ring can be held to them. A guest
// may point a device-writable buffer at its own rings; once the device has written there, what
// the ring held is no longer known and the check is skipped.
#pragma once

#include <cstdint>
#include <vector>

#include "fuzz/support/fuzzed_queues.h"
#include "fuzz/support/require.h"

namespace ember::fuzz {

class QueueWatch {
  public:
    QueueWatch(const GuestMemory& mem, const virtio::QueueState& s) : mem_(mem), start_(s) {
        rings_ = snapshot();
    }

    // `now` is the queue as the device left it, with nothing left in flight.
    void require_all_returned(const virtio::QueueState& now, bool broken) const {
        if (broken || snapshot() != rings_) return;
        const uint16_t taken = static_cast<uint16_t>(now.next_avail - start_.next_avail);
        const uint16_t posted = static_cast<uint16_t>(avail_idx(mem_, start_) - start_.next_avail);
        if (posted > start_.size) return;  // a corrupt index: the queue broke at once
        require(taken == posted, "the device takes every chain the driver posted");
        uint16_t returnable = 0;
        for (uint16_t i = 0; i < taken; ++i) {
            const uint64_t slot =
                start_.avail_ring + 4 + 2ull * ((start_.next_avail + i) % start_.size);
            if (mem_.read_obj<uint16_t>(slot).value_or(0xffff) < start_.size) ++returnable;
        }
        require(static_cast<uint16_t>(now.next_used - start_.next_used) == returnable,
                "every chain with a head in the queue comes back on the used ring, once");
    }

  private:
    // The available ring (flags, index, entries) as bytes.
    std::vector<uint8_t> snapshot() const {
        std::vector<uint8_t> bytes(4 + 2ull * start_.size);
        (void)mem_.read(start_.avail_ring, bytes);
        return bytes;
    }

    const GuestMemory& mem_;
    virtio::QueueState start_;
    std::vector<uint8_t> rings_;
};

}  // namespace ember::fuzz
