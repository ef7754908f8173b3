#include "vmm/machine/virtio_kinds.h"

#include "virtio/block/block_device.h"
#include "virtio/net/net_device.h"

namespace ember {
namespace {

template <typename Device>
Result<std::unique_ptr<virtio::VirtioDevice>> made(Result<std::unique_ptr<Device>> device) {
    if (!device) return std::unexpected(device.error());
    return std::unique_ptr<virtio::VirtioDevice>(std::move(*device));
}

}  // namespace

Result<std::unique_ptr<virtio::VirtioDevice>> create_virtio_device(const VirtioSlot& slot,
                                                                   const VmConfig& config,
                                                                   const GuestMemory& memory,
                                                                   virtio::Interrupt& interrupt) {
    switch (slot.kind) {
        case VirtioSlot::Kind::Block:
            return made(
                virtio::BlockDevice::create(config.drives[slot.index], memory, interrupt, {}));
        case VirtioSlot::Kind::Net:
            return made(virtio::NetDevice::create(config.network_interfaces[slot.index], memory,
                                                  interrupt));
    }
    return fail("a virtio slot of no known kind");
}

std::string no_such_device(const virtio::DeviceUpdate& update) {
    if (const auto* drive = std::get_if<DriveUpdate>(&update))
        return "drive '" + drive->drive_id + "': no such drive";
    return "network interface '" + std::get<NetworkInterfaceUpdate>(update).iface_id +
           "': no such interface";
}

}  // namespace ember
