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
    ByteWriter w;
    put_vector(w, s.cpuid);
    w.put(s.tsc_khz);
    w.put(s.regs);
    w.put(s.sregs);
    w.put(s.xsave);
    w.put(s.xcrs);
    put_vector(w, s.msrs);
    w.put(s.lapic);
    w.put(s.mp_state);
    w.put(s.events);
    w.put(s.debugregs);
    if (vcpu_section_version(s) >= 2) put_vector(w, s.nested);
    return w.bytes();
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
    ByteReader r(payload, "vCPU section");
    VcpuState s;
    EMBER_TRY(get_vector(r, s.cpuid, 1024));
    EMBER_TRY(read_into(r, s.tsc_khz));
    EMBER_TRY(read_into(r, s.regs));
    EMBER_TRY(read_into(r, s.sregs));
    EMBER_TRY(read_into(r, s.xsave));
    EMBER_TRY(read_into(r, s.xcrs));
    EMBER_TRY(get_vector(r, s.msrs, 4096));
    EMBER_TRY(read_into(r, s.lapic));
    EMBER_TRY(read_into(r, s.mp_state));
    EMBER_TRY(read_into(r, s.events));
    EMBER_TRY(read_into(r, s.debugregs));
    if (version >= 2) {
        EMBER_TRY(get_vector(r, s.nested, static_cast<uint32_t>(kMaxNestedStateBytes)),
                  "vCPU section: nested virtualization state (bytes)");
        if (version == 2 || !s.nested.empty())
            EMBER_TRY(check_nested_state(s.nested), "vCPU section");
    }
    if (!r.done()) return fail("vCPU section has trailing bytes");
    const bool pending_format = s.events.flags & KVM_VCPUEVENT_VALID_PAYLOAD;
    if (pending_format != (version == 3))
        return fail("vCPU section version " + std::to_string(version) +
                    (pending_format ? " with" : " without") +
                    " events in KVM_CAP_EXCEPTION_PAYLOAD's format, which version 3 alone holds");
    return s;
}

std::vector<uint8_t> encode(const VmKvmState& s) {
    ByteWriter w;
    w.put(s.pic_master);
    w.put(s.pic_slave);
    w.put(s.ioapic);
    w.put(s.pit);
    w.put(s.clock);
    return w.bytes();
}

Result<VmKvmState> decode_vm(std::span<const uint8_t> payload) {
    ByteReader r(payload, "VM section");
    VmKvmState s;
    EMBER_TRY(read_into(r, s.pic_master));
    EMBER_TRY(read_into(r, s.pic_slave));
    EMBER_TRY(read_into(r, s.ioapic));
    EMBER_TRY(read_into(r, s.pit));
    EMBER_TRY(read_into(r, s.clock));
    if (!r.done()) return fail("VM section has trailing bytes");
    if (s.pic_master.chip_id != KVM_IRQCHIP_PIC_MASTER ||
        s.pic_slave.chip_id != KVM_IRQCHIP_PIC_SLAVE || s.ioapic.chip_id != KVM_IRQCHIP_IOAPIC)
        return fail("VM section: interrupt controllers out of order");
    return s;
}

std::vector<uint8_t> encode(const MemoryLayout& m) {
    ByteWriter w;
    put_vector(w, m.regions);
    w.put(static_cast<uint8_t>(m.generation_id.has_value()));
    if (m.generation_id) {
        w.put(m.generation_id->addr);
        w.put(m.generation_id->gsi);
    }
    w.put(m.page_size);
    return w.bytes();
}

Result<MemoryLayout> decode_memory(std::span<const uint8_t> payload, uint32_t version) {
    if (version < 1 || version > kMemoryLayoutVersion)
        return fail("memory section version " + std::to_string(version) +
                    ": this ember reads versions 1 to " + std::to_string(kMemoryLayoutVersion));
    ByteReader r(payload, "memory section");
    MemoryLayout m;
    EMBER_TRY(get_vector(r, m.regions, 8));
    if (version >= 2) {
        bool present = false;
        EMBER_TRY(read_into(r, present));
        if (present) {
            GenerationIdPlace place{};
            EMBER_TRY(read_into(r, place.addr));
            EMBER_TRY(read_into(r, place.gsi));
            // 16 bytes inside one region: ember writes there on restore.
            const bool inside = std::any_of(m.regions.begin(), m.regions.end(), [&](const auto& g) {
                return place.addr >= g.guest_addr && g.size >= 16 &&
                       place.addr - g.guest_addr <= g.size - 16;
            });
            if (!inside)
                return fail("memory section: the generation ID at " + std::to_string(place.addr) +
                            " is outside guest memory");
            if (place.gsi > x86::kLastGsi)
                return fail("memory section: the generation ID's interrupt " +
                            std::to_string(place.gsi) + " is not a line of the IOAPIC");
            m.generation_id = place;
        }
    }
    if (version >= 3) {
        EMBER_TRY(read_into(r, m.page_size));
        if (m.page_size != kGuestPageSize && m.page_size != kHugePageSize)
            return fail("memory section: page size " + std::to_string(m.page_size) +
                        " is neither 4 KiB nor 2 MiB");
        for (const auto& g : m.regions)
            if (g.guest_addr % m.page_size != 0 || g.size % m.page_size != 0)
                return fail("memory section: the region at " + std::to_string(g.guest_addr) +
                            " is not made of whole " + std::to_string(m.page_size) + "-byte pages");
    }
    if (!r.done()) return fail("memory section has trailing bytes");
    return m;
}

}  // namespace ember::snapshot
