#include "vmm/machine/virtio_kinds.h"

#include "virtio/block/block_kind.h"
#include "virtio/net/net_kind.h"

namespace ember {
namespace {

constexpr const virtio::VirtioKind* kKinds[] = {
    &virtio::kBlockKind,
    &virtio::kNetKind,
};

}  // namespace

std::span<const virtio::VirtioKind* const> virtio_kinds() {
    return kKinds;
}

std::string no_such_device(const virtio::DeviceUpdate& update) {
    if (const auto* drive = std::get_if<DriveUpdate>(&update))
        return "drive '" + drive->drive_id + "': no such drive";
    return "network interface '" + std::get<NetworkInterfaceUpdate>(update).iface_id +
           "': no such interface";
}

}  // namespace ember
