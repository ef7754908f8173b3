// Where each virtio device sits and what the kernel is told about it: one 4 KiB MMIO slot and one
// GSI per device from kMmioGapStart / GSI 5 up (after the boot timer's slot when it is on), kind by
// kind in the order the kinds are listed (vmm/machine/virtio_kinds.cc: drives, the root first so it
// is /dev/vda, then network interfaces, the first eth0), announced as
// virtio_mmio.device=4K@<base>:<gsi>.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/base/error.h"
#include "core/config/vm_config.h"
#include "virtio/kind.h"

namespace ember {

struct VirtioSlot {
    const virtio::VirtioKind* kind;
    uint64_t base;
    uint32_t gsi;
    size_t index;  // into the kind's list in the VmConfig
};

Result<std::vector<VirtioSlot>> plan_virtio_slots(const VmConfig& config, bool boot_timer,
                                                  std::span<const virtio::VirtioKind* const> kinds);

// " root=/dev/vda rw virtio_mmio.device=4K@0xd0000000:5 ..." for the planned slots.
std::string virtio_boot_args(const VmConfig& config, const std::vector<VirtioSlot>& slots);

}  // namespace ember
