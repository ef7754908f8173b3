#include "virtio/block/block_kind.h"

#include "virtio/block/block_device.h"

namespace ember::virtio {
namespace {

std::vector<size_t> entries(const VmConfig& config) {
    std::vector<size_t> out;
    for (size_t i = 0; i < config.drives.size(); ++i)
        if (config.drives[i].is_root_device) out.push_back(i);
    for (size_t i = 0; i < config.drives.size(); ++i)
        if (!config.drives[i].is_root_device) out.push_back(i);
    return out;
}

Result<std::unique_ptr<VirtioDevice>> create(const VmConfig& config, size_t entry,
                                             const GuestMemory& memory, Interrupt& interrupt) {
    return as_virtio_device(BlockDevice::create(config.drives[entry], memory, interrupt, {}));
}

std::string boot_args(const VmConfig& config, size_t entry) {
    const auto& drive = config.drives[entry];
    if (!drive.is_root_device) return {};
    std::string args =
        drive.partuuid ? " root=PARTUUID=" + *drive.partuuid : std::string(" root=/dev/vda");
    return args + (drive.is_read_only ? " ro" : " rw");
}

void record(VmConfig& config, size_t entry, const VirtioDevice& device) {
    config.drives[entry] = static_cast<const BlockDevice&>(device).config();
}

}  // namespace

const VirtioKind kBlockKind{.name = "block",
                            .entries = entries,
                            .create = create,
                            .boot_args = boot_args,
                            .record = record,
                            .noun = "drive"};

}  // namespace ember::virtio
