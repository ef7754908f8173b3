#include "snapshot/machine_state.h"

#include <algorithm>

#include "core/arch/x86_64/layout.h"
#include "core/config/vm_config.h"

namespace ember::snapshot {
namespace {

constexpr uint32_t kMsrTsc = 0x10;
constexpr uint32_t kMsrTscDeadline = 0x6e0;

}  // namespace

uint64_t MemoryLayout::total() const {
    uint64_t t = 0;
    for (const auto& r : regions) t += r.size;
    return t;
}

Result<VcpuState> capture_vcpu(const Vcpu& v, std::span<const uint32_t> msr_indices,
                               std::vector<kvm_cpuid_entry2> cpuid) {
    VcpuState s;
    s.cpuid = std::move(cpuid);
    auto tsc = v.get_tsc_khz();
    EMBER_TRY(tsc);
    s.tsc_khz = *tsc;
    // The MP state first: reading it makes KVM take the INIT or SIPI a vCPU still has pending,
    // which rewrites its registers and LAPIC. Read after them, it would describe a vCPU (runnable
    // at a SIPI's vector) that the registers saved beside it do not (still at the reset vector).
    auto mp = v.get_mp_state();
    auto regs = v.get_regs();
    auto sregs = v.get_sregs();
    auto xsave = v.get_xsave();
    auto xcrs = v.get_xcrs();
    auto lapic = v.get_lapic();
    auto events = v.get_vcpu_events();
    auto dregs = v.get_debugregs();
    for (const Error* e : {regs ? nullptr : &regs.error(), sregs ? nullptr : &sregs.error(),
                           xsave ? nullptr : &xsave.error(), xcrs ? nullptr : &xcrs.error(),
                           lapic ? nullptr : &lapic.error(), mp ? nullptr : &mp.error(),
                           events ? nullptr : &events.error(), dregs ? nullptr : &dregs.error()})
        if (e) return std::unexpected(*e);
    s.regs = *regs;
    s.sregs = *sregs;
    s.xsave = *xsave;
    s.xcrs = *xcrs;
    s.lapic = *lapic;
    s.mp_state = *mp;
    s.events = *events;
    s.debugregs = *dregs;
    // KVM reads MSRs in order and stops at the first it cannot read: drop that one and go on.
    std::vector<uint32_t> wanted(msr_indices.begin(), msr_indices.end());
    while (!wanted.empty()) {
        auto got = v.get_msrs(wanted);
        EMBER_TRY(got);
        s.msrs.insert(s.msrs.end(), got->begin(), got->end());
        if (got->size() == wanted.size()) break;
        wanted.erase(wanted.begin(), wanted.begin() + static_cast<ptrdiff_t>(got->size() + 1));
    }
    return s;
}

Result<void> restore_vcpu(const Vcpu& v, const VcpuState& s, bool cpuid_in_place) {
    if (!cpuid_in_place) EMBER_TRY(v.set_cpuid(s.cpuid));
    if (s.tsc_khz) {
        // Another host may not scale the TSC; the guest then sees time at that host's rate.
        if (auto current = v.get_tsc_khz(); current && *current != s.tsc_khz)
            (void)v.set_tsc_khz(s.tsc_khz);
    }
    EMBER_TRY(v.set_sregs(s.sregs));
    EMBER_TRY(v.set_regs(s.regs));
    EMBER_TRY(v.set_xsave(s.xsave));
    EMBER_TRY(v.set_xcrs(s.xcrs));
    // The LAPIC before the MSRs: KVM drops a TSC-deadline write unless the timer is in that mode.
    EMBER_TRY(v.set_lapic(s.lapic));
    std::vector<kvm_msr_entry> msrs = s.msrs;
    // TSC first and TSC_DEADLINE last: the deadline is relative to the restored TSC.
    std::stable_sort(msrs.begin(), msrs.end(), [](const auto& a, const auto& b) {
        auto rank = [](uint32_t i) { return i == kMsrTsc ? 0 : i == kMsrTscDeadline ? 2 : 1; };
        return rank(a.index) < rank(b.index);
    });
    EMBER_TRY(v.set_msrs(msrs));
    EMBER_TRY(v.set_mp_state(s.mp_state));
    EMBER_TRY(v.set_vcpu_events(s.events));
    return v.set_debugregs(s.debugregs);
}

Result<VmKvmState> capture_vm(const Vm& vm) {
    VmKvmState s;
    auto master = vm.get_irqchip(KVM_IRQCHIP_PIC_MASTER);
    auto slave = vm.get_irqchip(KVM_IRQCHIP_PIC_SLAVE);
    auto ioapic = vm.get_irqchip(KVM_IRQCHIP_IOAPIC);
    auto pit = vm.get_pit2();
    auto clock = vm.get_clock();
    EMBER_TRY(master);
    EMBER_TRY(slave);
    EMBER_TRY(ioapic);
    EMBER_TRY(pit);
    EMBER_TRY(clock);
    s.pic_master = *master;
    s.pic_slave = *slave;
    s.ioapic = *ioapic;
    s.pit = *pit;
    s.clock = *clock;
    return s;
}

Result<void> restore_vm(const Vm& vm, const VmKvmState& s) {
    for (const auto* chip : {&s.pic_master, &s.pic_slave, &s.ioapic})
        EMBER_TRY(vm.set_irqchip(*chip));
    EMBER_TRY(vm.set_pit2(s.pit));
    return vm.set_clock(s.clock);
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
    return w.bytes();
}

Result<VcpuState> decode_vcpu(std::span<const uint8_t> payload) {
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
    if (!r.done()) return fail("vCPU section has trailing bytes");
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
