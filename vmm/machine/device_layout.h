// Where each virtio device sits and what the kernel is told about it: one 4 KiB MMIO slot and one
// GSI per device from kMmioGapStart / GSI 5 up (after the boot timer's slot when it is on), the
// root drive first so it is /dev/vda, then the other drives, then the network interfaces (the first
// is eth0), announced as virtio_mmio.device=4K@<base>:<gsi>.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/base/error.h"
#include "core/config/vm_config.h"

namespace ember {

struct VirtioSlot {
    enum class Kind { Block, Net } kind;
    uint64_t base;
    uint32_t gsi;
    size_t index;  // into VmConfig::drives or VmConfig::network_interfaces
};

Result<std::vector<VirtioSlot>> plan_virtio_slots(const VmConfig& config, bool boot_timer);

// " root=/dev/vda rw virtio_mmio.device=4K@0xd0000000:5 ..." for the planned slots.
std::string virtio_boot_args(const VmConfig& config, const std::vector<VirtioSlot>& slots);

}  // namespace ember
