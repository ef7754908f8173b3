#include "vmm/app/vm_metrics.h"

namespace ember {
namespace {

metrics::Group block_group(const std::string& name, const virtio::BlockCounters& c) {
    return {name,
            {{"read_count", c.read_ops},
             {"write_count", c.write_ops},
             {"flush_count", c.flush_ops},
             {"read_bytes", c.read_bytes},
             {"write_bytes", c.write_bytes},
             {"invalid_reqs_count", c.invalid_requests},
             {"execute_fails", c.io_errors},
             {"rate_limiter_throttled_events", c.rate_limited}}};
}

metrics::Group net_group(const std::string& name, const virtio::NetCounters& c) {
    return {name,
            {{"rx_bytes_count", c.rx_bytes},
             {"rx_packets_count", c.rx_packets},
             // Frames the guest could not take (too big for its buffers) and tap read errors.
             {"rx_fails", c.rx_dropped + c.rx_errors},
             {"rx_rate_limiter_throttled", c.rx_rate_limited},
             {"tx_bytes_count", c.tx_bytes},
             {"tx_packets_count", c.tx_packets},
             // Malformed frames, frames for a broken tap, and failed tap writes.
             {"tx_fails", c.tx_dropped + c.tx_errors},
             {"tap_write_fails", c.tx_errors},
             {"tx_rate_limiter_throttled", c.tx_rate_limited}}};
}

}  // namespace

std::vector<metrics::Group> vm_metrics(const Vmm& vmm, const VmConfig& config) {
    std::vector<metrics::Group> groups;
    uint64_t io_in = 0, io_out = 0, mmio_read = 0, mmio_write = 0;
    for (const auto& v : vmm.vcpus()) {
        io_in += v->counters().io_in_exits;
        io_out += v->counters().io_out_exits;
        mmio_read += v->counters().mmio_read_exits;
        mmio_write += v->counters().mmio_write_exits;
    }
    groups.push_back({"vcpu",
                      {{"exit_io_in", io_in},
                       {"exit_io_out", io_out},
                       {"exit_mmio_read", mmio_read},
                       {"exit_mmio_write", mmio_write}}});

    metrics::Group block{"block", {}};
    std::vector<metrics::Group> drives;
    for (const auto& d : config.drives) {
        if (const auto* b = vmm.block_device(d.drive_id)) {
            drives.push_back(block_group("block_" + d.drive_id, b->counters()));
            metrics::add_into(block, drives.back());
        }
    }
    if (!drives.empty()) {
        groups.push_back(std::move(block));
        for (auto& g : drives) groups.push_back(std::move(g));
    }

    metrics::Group net{"net", {}};
    std::vector<metrics::Group> ifaces;
    for (const auto& n : config.network_interfaces) {
        if (const auto* d = vmm.net_device(n.iface_id)) {
            ifaces.push_back(net_group("net_" + n.iface_id, d->counters()));
            metrics::add_into(net, ifaces.back());
        }
    }
    if (!ifaces.empty()) {
        groups.push_back(std::move(net));
        for (auto& g : ifaces) groups.push_back(std::move(g));
    }
    return groups;
}

}  // namespace ember
