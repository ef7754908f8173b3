// The net device's counters under Firecracker's names for them ("net" group).
#include "virtio/net/net_device.h"

namespace ember::virtio {

std::vector<metrics::Field> NetDevice::metrics() const {
    const NetCounters& c = counters_;
    return {{"rx_bytes_count", c.rx_bytes},
            {"rx_packets_count", c.rx_packets},
            // Frames the guest could not take (too big for its buffers) and tap read errors.
            {"rx_fails", c.rx_dropped + c.rx_errors},
            {"rx_rate_limiter_throttled", c.rx_rate_limited},
            {"tx_bytes_count", c.tx_bytes},
            {"tx_packets_count", c.tx_packets},
            // Malformed frames, frames for a broken tap, and failed tap writes.
            {"tx_fails", c.tx_dropped + c.tx_errors},
            {"tap_write_fails", c.tx_errors},
            {"tx_rate_limiter_throttled", c.tx_rate_limited}};
}

}  // namespace ember::virtio
