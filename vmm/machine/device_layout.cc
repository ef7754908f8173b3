#include "vmm/machine/device_layout.h"

#include "core/arch/x86_64/layout.h"
#include "core/base/hex.h"

namespace ember {

Result<std::vector<VirtioSlot>> plan_virtio_slots(const VmConfig& config, bool boot_timer) {
    using Kind = VirtioSlot::Kind;
    std::vector<std::pair<Kind, size_t>> order;
    for (size_t i = 0; i < config.drives.size(); ++i)
        if (config.drives[i].is_root_device) order.emplace_back(Kind::Block, i);
    for (size_t i = 0; i < config.drives.size(); ++i)
        if (!config.drives[i].is_root_device) order.emplace_back(Kind::Block, i);
    for (size_t i = 0; i < config.network_interfaces.size(); ++i) order.emplace_back(Kind::Net, i);

    const uint32_t available = x86::kLastGsi - x86::kFirstMmioGsi + 1;
    if (order.size() > available)
        return fail("drives: " + std::to_string(order.size()) + " devices, but only " +
                    std::to_string(available) + " interrupt lines are free for them");
    std::vector<VirtioSlot> slots;
    uint64_t base = x86::kMmioGapStart + (boot_timer ? x86::kMmioSlotSize : 0);
    uint32_t gsi = x86::kFirstMmioGsi;
    for (auto [kind, index] : order) {
        slots.push_back(VirtioSlot{kind, base, gsi++, index});
        base += x86::kMmioSlotSize;
    }
    return slots;
}

std::string virtio_boot_args(const VmConfig& config, const std::vector<VirtioSlot>& slots) {
    std::string args;
    for (const auto& slot : slots) {
        if (slot.kind != VirtioSlot::Kind::Block) continue;
        const auto& drive = config.drives[slot.index];
        if (!drive.is_root_device) continue;
        args +=
            drive.partuuid ? " root=PARTUUID=" + *drive.partuuid : std::string(" root=/dev/vda");
        args += drive.is_read_only ? " ro" : " rw";
    }
    for (const auto& slot : slots)
        args += " virtio_mmio.device=4K@" + hex(slot.base) + ":" + std::to_string(slot.gsi);
    return args;
}

}  // namespace ember
