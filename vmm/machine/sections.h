// The kinds of device a VM's state file holds a section for, one line per kind: a new device kind
// adds its line here (and its id in vmm/base/state_sections.h).
#pragma once

#include "virtio/mmio/persist.h"
#include "vmm/base/persistent.h"
#include "vmm/devices/i8042_persist.h"
#include "vmm/devices/serial_persist.h"

namespace ember {

inline constexpr StateSection kDeviceSections[] = {kSerialSection, kI8042Section,
                                                   virtio::kTransportSection};

}  // namespace ember
