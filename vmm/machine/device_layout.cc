#include "vmm/machine/device_layout.h"

#include "core/arch/x86_64/layout.h"
#include "core/base/hex.h"

namespace ember {

Result<std::vector<VirtioSlot>> plan_virtio_slots(
    const VmConfig& config, bool boot_timer, std::span<const virtio::VirtioKind* const> kinds) {
    std::vector<std::pair<const virtio::VirtioKind*, size_t>> order;
    for (const auto* kind : kinds)
        for (size_t index : kind->entries(config)) order.emplace_back(kind, index);

    const uint32_t available = x86::kLastGsi - x86::kFirstMmioGsi + 1;
    if (order.size() > available)
        return fail(std::to_string(order.size()) + " virtio devices, but only " +
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
    for (const auto& slot : slots)
        if (slot.kind->boot_args) args += slot.kind->boot_args(config, slot.index);
    for (const auto& slot : slots)
        args += " virtio_mmio.device=4K@" + hex(slot.base) + ":" + std::to_string(slot.gsi);
    return args;
}

}  // namespace ember
