#include "vmm/app/vm_metrics.h"

#include <optional>

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

// Firecracker's shape for a kind of device: the aggregate group (`name`, every device's counters
// added up) and then one group per device, when there is any.
template <typename Config, typename GroupOf>
void add_device_groups(std::vector<metrics::Group>& groups, const std::string& name,
                       const std::vector<Config>& devices, GroupOf group_of) {
    metrics::Group total{name, {}};
    std::vector<metrics::Group> each;
    for (const auto& d : devices) {
        if (auto g = group_of(d)) {
            metrics::add_into(total, *g);
            each.push_back(std::move(*g));
        }
    }
    if (each.empty()) return;
    groups.push_back(std::move(total));
    for (auto& g : each) groups.push_back(std::move(g));
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
    const SerialCounters uart = vmm.serial_counters();
    groups.push_back({"uart",
                      {{"read_count", uart.read_count},
                       {"write_count", uart.write_count},
                       // Console bytes dropped because the console's reader fell behind.
                       {"missed_write_count", vmm.serial_bytes_dropped()}}});
    const I8042Counters kbd = vmm.i8042_counters();
    groups.push_back({"i8042",
                      {{"read_count", kbd.read_count},
                       {"write_count", kbd.write_count},
                       {"reset_count", kbd.reset_count},
                       {"missed_write_count", kbd.missed_write_count}}});

    add_device_groups(groups, "block", config.drives, [&](const DriveConfig& d) {
        const auto* b = vmm.block_device(d.drive_id);
        return b ? std::optional(block_group("block_" + d.drive_id, b->counters())) : std::nullopt;
    });
    add_device_groups(
        groups, "net", config.network_interfaces, [&](const NetworkInterfaceConfig& n) {
            const auto* d = vmm.net_device(n.iface_id);
            return d ? std::optional(net_group("net_" + n.iface_id, d->counters())) : std::nullopt;
        });
    return groups;
}

}  // namespace ember
