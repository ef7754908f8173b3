#include "vmm/app/vm_metrics.h"

#include <algorithm>
#include <string>
#include <utility>

#include "core/devices/i8042.h"
#include "core/devices/serial.h"

namespace ember {
namespace {

// Firecracker's shape for the devices: per kind, the aggregate group (every device of the kind
// added up) and then one group per device, "<kind>_<id>"; kinds in the order their first device
// comes.
void add_device_groups(std::vector<metrics::Group>& groups, const Vmm& vmm) {
    std::vector<std::pair<metrics::Group, std::vector<metrics::Group>>> kinds;
    for (const auto* device : vmm.virtio_devices()) {
        const std::string kind(device->metrics_kind());
        if (kind.empty()) continue;
        auto it = std::ranges::find(kinds, kind, [](const auto& k) { return k.first.name; });
        if (it == kinds.end()) it = kinds.insert(kinds.end(), {metrics::Group{kind, {}}, {}});
        metrics::Group own{kind + "_" + device->id(), device->metrics()};
        metrics::add_into(it->first, own);
        it->second.push_back(std::move(own));
    }
    for (auto& [total, each] : kinds) {
        groups.push_back(std::move(total));
        for (auto& g : each) groups.push_back(std::move(g));
    }
}

}  // namespace

std::vector<metrics::Group> vm_metrics(const Vmm& vmm) {
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

    add_device_groups(groups, vmm);
    return groups;
}

}  // namespace ember
