#include "vmm/machine/templated_cpu.h"

#include <algorithm>

#include "core/base/hex.h"

namespace ember {
namespace {

uint32_t& register_of(kvm_cpuid_entry2& e, CpuidRegister r) {
    switch (r) {
        case CpuidRegister::Eax: return e.eax;
        case CpuidRegister::Ebx: return e.ebx;
        case CpuidRegister::Ecx: return e.ecx;
        case CpuidRegister::Edx: return e.edx;
    }
    return e.eax;
}

const kvm_cpuid_entry2* entry(const std::vector<kvm_cpuid_entry2>& cpuid, uint32_t leaf) {
    for (const auto& e : cpuid)
        if (e.function == leaf && e.index == 0) return &e;
    return nullptr;
}

// KVM answers from any entry the table holds, even one past the highest leaf or subleaf that the
// table itself gives; a template that lowers one of them (a fleet's, to the lowest of its hosts')
// takes away what lies past it, or a load on a host without those leaves would find them.
void drop_past_bounds(std::vector<kvm_cpuid_entry2>& cpuid) {
    constexpr uint32_t kHypervisorLeaves = 0x40000000;
    constexpr uint32_t kExtendedLeaves = 0x80000000;
    const kvm_cpuid_entry2* basic = entry(cpuid, 0);
    const kvm_cpuid_entry2* extended = entry(cpuid, kExtendedLeaves);
    const kvm_cpuid_entry2* seven = entry(cpuid, 7);
    const uint32_t max_basic = basic ? basic->eax : ~0u;
    const uint32_t max_extended = extended ? extended->eax : ~0u;
    const uint32_t max_seven = seven ? seven->eax : ~0u;
    std::erase_if(cpuid, [&](const kvm_cpuid_entry2& e) {
        if (e.function < kHypervisorLeaves)
            return e.function > max_basic || (e.function == 7 && e.index > max_seven);
        return e.function > kExtendedLeaves && e.function < kExtendedLeaves + 0x10000000 &&
               e.function > max_extended;
    });
}

}  // namespace

Result<std::vector<kvm_cpuid_entry2>> templated_cpuid(std::vector<kvm_cpuid_entry2> supported,
                                                      const CpuTemplate& t) {
    for (const auto& m : t.cpuid_modifiers) {
        auto it = std::find_if(supported.begin(), supported.end(), [&](const auto& e) {
            return e.function == m.leaf && e.index == m.subleaf;
        });
        if (it == supported.end())
            return fail("cpu-config: Template changes a CPUID entry not supported by KVM: Leaf: " +
                        hex32(m.leaf) + ", Subleaf: " + hex32(m.subleaf));
        it->flags = m.flags;
        for (const auto& r : m.modifiers) {
            uint32_t& value = register_of(*it, r.reg);
            value = static_cast<uint32_t>(r.bitmap.applied_to(value));
        }
    }
    drop_past_bounds(supported);
    return supported;
}

Result<void> check_kvm_capabilities(const Kvm& kvm, const CpuTemplate& t) {
    std::vector<uint32_t> wanted;
    for (const auto& c : t.kvm_capabilities) {
        std::erase(wanted, c.capability);
        if (!c.removed) wanted.push_back(c.capability);
    }
    for (uint32_t c : wanted)
        if (kvm.check_extension(c) <= 0)
            return fail("cpu-config: kvm_capabilities: this host's KVM lacks capability " +
                        std::to_string(c));
    return {};
}

Result<void> apply_msr_modifiers(const Vcpu& vcpu, const CpuTemplate& t) {
    for (const auto& m : t.msr_modifiers) {
        const std::string which = "cpu-config: msr_modifiers: MSR " + hex32(m.addr);
        const uint32_t index = m.addr;
        auto current = vcpu.get_msrs(std::span(&index, 1));
        EMBER_TRY(current, which);
        if (current->size() != 1) return fail(which + ": this host's KVM does not read it");
        const kvm_msr_entry entry{
            .index = m.addr, .reserved = 0, .data = m.bitmap.applied_to(current->front().data)};
        EMBER_TRY(vcpu.set_msrs(std::span(&entry, 1)), which);
    }
    return {};
}

}  // namespace ember
