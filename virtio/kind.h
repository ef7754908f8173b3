// A kind of virtio device, as the Vmm sees it before there is a device: which entries of a VM's
// configuration are devices of the kind, and how to make one. Each kind's folder defines its
// VirtioKind; vmm/machine/virtio_kinds.cc lists them, one line each, and the Vmm plans slots,
// makes devices, tells the kernel about them, hands them their updates by kind and id, and keeps
// the running configuration, through that list alone.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/error.h"
#include "core/config/vm_config.h"
#include "core/memory/guest_memory.h"
#include "virtio/device.h"

namespace ember::virtio {

struct VirtioKind {
    // As the device's kind() says it: "block", "net".
    std::string_view name;
    // The kind's entries in the configuration, in the order they take MMIO slots: indexes into
    // the kind's own list there (the root drive first, so that it is /dev/vda).
    std::vector<size_t> (*entries)(const VmConfig&) = nullptr;
    Result<std::unique_ptr<VirtioDevice>> (*create)(const VmConfig&, size_t entry,
                                                    const GuestMemory&, Interrupt&) = nullptr;
    // What the kernel's command line says of an entry besides its slot (" root=/dev/vda rw"), or
    // null when the kind says nothing.
    std::string (*boot_args)(const VmConfig&, size_t entry) = nullptr;
    // Writes a device of the kind, made from `entry`, into that entry as it runs: the io_engine it
    // fell back to, the backing file and rate limits an update gave it. Null: the kind has no
    // entries to keep up to date.
    void (*record)(VmConfig&, size_t entry, const VirtioDevice&) = nullptr;
    // What a user calls one ("drive", "network interface"), for "drive 'x': no such drive".
    std::string_view noun = "device";
};

// `device` as a VirtioDevice, for a kind's create().
template <typename Device>
Result<std::unique_ptr<VirtioDevice>> as_virtio_device(Result<std::unique_ptr<Device>> device) {
    EMBER_TRY(device);
    return std::unique_ptr<VirtioDevice>(std::move(*device));
}

}  // namespace ember::virtio
