#include "core/arch/x86_64/cpuid.h"

#include <algorithm>
#include <bit>
#include <cstring>

namespace ember::x86 {
namespace {

constexpr uint32_t kLeafFeatures = 0x1;
constexpr uint32_t kLeafCacheParams = 0x4;
constexpr uint32_t kLeafTopology = 0xb;
constexpr uint32_t kLeafTopologyV2 = 0x1f;
constexpr uint32_t kLeafHypervisor = 0x40000000;
constexpr uint32_t kLeafAddressSizes = 0x80000008;
constexpr uint32_t kLeafAmdExtendedApic = 0x8000001e;

constexpr uint32_t kEcxHypervisor = 1u << 31;
constexpr uint32_t kEdxHtt = 1u << 28;

uint32_t bits_for(uint32_t count) {
    return count <= 1 ? 0 : std::bit_width(count - 1);
}

kvm_cpuid_entry2 topology_entry(uint32_t index, uint32_t eax, uint32_t ebx, uint32_t level_type,
                                uint32_t apic_id) {
    kvm_cpuid_entry2 e{};
    e.function = kLeafTopology;
    e.index = index;
    e.flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
    e.eax = eax;
    e.ebx = ebx;
    e.ecx = (level_type << 8) | index;
    e.edx = apic_id;
    return e;
}

}  // namespace

std::vector<kvm_cpuid_entry2> guest_cpuid(const std::vector<kvm_cpuid_entry2>& supported,
                                          uint32_t vcpu_id, CpuTopology topology) {
    const uint32_t threads_per_core = topology.smt && topology.vcpu_count > 1 ? 2 : 1;
    const uint32_t smt_shift = bits_for(threads_per_core);
    const uint32_t package_shift = bits_for(topology.vcpu_count);

    std::vector<kvm_cpuid_entry2> out;
    bool has_hypervisor_leaf = false;
    for (auto e : supported) {
        switch (e.function) {
            case kLeafFeatures:
                e.ebx = (e.ebx & 0x0000ffff) | (vcpu_id << 24) | (topology.vcpu_count << 16);
                e.ecx |= kEcxHypervisor;
                if (topology.vcpu_count > 1)
                    e.edx |= kEdxHtt;
                else
                    e.edx &= ~kEdxHtt;
                break;
            case kLeafCacheParams: {
                uint32_t level = (e.eax >> 5) & 0x7;
                uint32_t sharing = level <= 2 ? threads_per_core : topology.vcpu_count;
                uint32_t cores = topology.vcpu_count / threads_per_core;
                e.eax = (e.eax & 0x3fff) | ((sharing - 1) << 14) | ((cores - 1) << 26);
                break;
            }
            case kLeafTopology:
            case kLeafTopologyV2: continue;  // rebuilt below
            case kLeafHypervisor: has_hypervisor_leaf = true; break;
            case kLeafAddressSizes:
                e.ecx = (e.ecx & ~0xf0ffu) | (package_shift << 12) | (topology.vcpu_count - 1);
                break;
            case kLeafAmdExtendedApic:
                e.eax = vcpu_id;
                e.ebx = (e.ebx & ~0xffffu) | ((threads_per_core - 1) << 8) | (vcpu_id >> smt_shift);
                e.ecx &= ~0x7ffu;  // one node, node id 0
                break;
        }
        out.push_back(e);
    }
    out.push_back(topology_entry(0, smt_shift, threads_per_core, 1, vcpu_id));
    out.push_back(topology_entry(1, package_shift, topology.vcpu_count, 2, vcpu_id));
    out.push_back(topology_entry(2, 0, 0, 0, vcpu_id));
    if (!has_hypervisor_leaf) {
        kvm_cpuid_entry2 e{};
        e.function = kLeafHypervisor;
        e.eax = kLeafHypervisor + 1;
        std::memcpy(&e.ebx, "KVMK", 4);
        std::memcpy(&e.ecx, "VMKV", 4);
        std::memcpy(&e.edx, "M\0\0\0", 4);
        out.push_back(e);
    }
    return out;
}

uint32_t physical_address_bits(const std::vector<kvm_cpuid_entry2>& cpuid) {
    auto it = std::find_if(cpuid.begin(), cpuid.end(),
                           [](const auto& e) { return e.function == kLeafAddressSizes; });
    if (it == cpuid.end() || (it->eax & 0xff) == 0) return 36;
    return it->eax & 0xff;
}

}  // namespace ember::x86
