#include "snapshot/machine_state.h"

#include <algorithm>

#include "core/arch/x86_64/layout.h"
#include "core/config/vm_config.h"

namespace ember::snapshot {
uint64_t MemoryLayout::total() const {
    uint64_t t = 0;
    for (const auto& r : regions) t += r.size;
    return t;
}

std::vector<uint8_t> encode(const VcpuState& s) {
    return encode_state(s, vcpu_section_version(s));
}

uint32_t vcpu_section_version(const VcpuState& s) {
    // The lowest version that holds the state, so that an older ember loads what it can, and
    // refuses by the version what it cannot, before anything is built.
    if (s.events.flags & KVM_VCPUEVENT_VALID_PAYLOAD) return 3;
    return s.nested.empty() ? 1 : 2;
}

Result<VcpuState> decode_vcpu(std::span<const uint8_t> payload, uint32_t version) {
    if (version < 1 || version > kVcpuVersion)
        return fail("vCPU section version " + std::to_string(version) +
                    ": this ember reads versions 1 to " + std::to_string(kVcpuVersion));
    auto s = decode_state<VcpuState>(payload, version, "vCPU section");
    EMBER_TRY(s);
    if (version == 2 || !s->nested.empty())
        EMBER_TRY(check_nested_state(s->nested), "vCPU section");
    const bool pending_format = s->events.flags & KVM_VCPUEVENT_VALID_PAYLOAD;
    if (pending_format != (version == 3))
        return fail("vCPU section version " + std::to_string(version) +
                    (pending_format ? " with" : " without") +
                    " events in KVM_CAP_EXCEPTION_PAYLOAD's format, which version 3 alone holds");
    return s;
}

std::vector<uint8_t> encode(const VmKvmState& s) {
    return encode_state(s, state_sections::kVmKvm.version);
}

Result<VmKvmState> decode_vm(std::span<const uint8_t> payload) {
    auto s = decode_state<VmKvmState>(payload, state_sections::kVmKvm.version, "VM section");
    EMBER_TRY(s);
    if (s->pic_master.chip_id != KVM_IRQCHIP_PIC_MASTER ||
        s->pic_slave.chip_id != KVM_IRQCHIP_PIC_SLAVE || s->ioapic.chip_id != KVM_IRQCHIP_IOAPIC)
        return fail("VM section: interrupt controllers out of order");
    return s;
}

std::vector<uint8_t> encode(const MemoryLayout& m) {
    return encode_state(m, kMemoryLayoutVersion);
}

Result<MemoryLayout> decode_memory(std::span<const uint8_t> payload, uint32_t version) {
    if (version < 1 || version > kMemoryLayoutVersion)
        return fail("memory section version " + std::to_string(version) +
                    ": this ember reads versions 1 to " + std::to_string(kMemoryLayoutVersion));
    auto m = decode_state<MemoryLayout>(payload, version, "memory section");
    EMBER_TRY(m);
    if (const auto& place = m->generation_id) {
        // 16 bytes inside one region: ember writes there on restore.
        const bool inside = std::any_of(m->regions.begin(), m->regions.end(), [&](const auto& g) {
            return place->addr >= g.guest_addr && g.size >= 16 &&
                   place->addr - g.guest_addr <= g.size - 16;
        });
        if (!inside)
            return fail("memory section: the generation ID at " + std::to_string(place->addr) +
                        " is outside guest memory");
        if (place->gsi > x86::kLastGsi)
            return fail("memory section: the generation ID's interrupt " +
                        std::to_string(place->gsi) + " is not a line of the IOAPIC");
    }
    if (m->page_size != kGuestPageSize && m->page_size != kHugePageSize)
        return fail("memory section: page size " + std::to_string(m->page_size) +
                    " is neither 4 KiB nor 2 MiB");
    for (const auto& g : m->regions)
        if (g.guest_addr % m->page_size != 0 || g.size % m->page_size != 0)
            return fail("memory section: the region at " + std::to_string(g.guest_addr) +
                        " is not made of whole " + std::to_string(m->page_size) + "-byte pages");
    return m;
}

}  // namespace ember::snapshot
