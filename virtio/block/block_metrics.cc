// The block device's counters under Firecracker's names for them ("block" group).
#include "virtio/block/block_device.h"

namespace ember::virtio {

std::vector<metrics::Field> BlockDevice::metrics() const {
    const BlockCounters& c = counters_;
    return {{"read_count", c.read_ops},     {"write_count", c.write_ops},
            {"flush_count", c.flush_ops},   {"read_bytes", c.read_bytes},
            {"write_bytes", c.write_bytes}, {"invalid_reqs_count", c.invalid_requests},
            {"execute_fails", c.io_errors}, {"rate_limiter_throttled_events", c.rate_limited}};
}

}  // namespace ember::virtio
