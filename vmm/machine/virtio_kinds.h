// The kinds of virtio device a VM can have, and the one place that makes each from its slot's
// configuration entry (vmm/machine/device_layout.h plans the slots). Everything else the Vmm
// does with a device goes through virtio::VirtioDevice.
#pragma once

#include <memory>
#include <string>

#include "core/base/error.h"
#include "core/config/vm_config.h"
#include "core/memory/guest_memory.h"
#include "virtio/device.h"
#include "vmm/machine/device_layout.h"

namespace ember {

Result<std::unique_ptr<virtio::VirtioDevice>> create_virtio_device(const VirtioSlot& slot,
                                                                   const VmConfig& config,
                                                                   const GuestMemory& memory,
                                                                   virtio::Interrupt& interrupt);

// What to say when no device takes an update: "drive 'x': no such drive" and the like.
std::string no_such_device(const virtio::DeviceUpdate& update);

}  // namespace ember
