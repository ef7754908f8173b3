// CPUID as the guest sees it: KVM's supported set, with this vCPU's APIC ID and the VM's topology
// (vcpu_count vCPUs in one package, two threads a core with SMT), and the hypervisor bit and leaf.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <vector>

namespace ember::x86 {

struct CpuTopology {
    uint32_t vcpu_count = 1;
    bool smt = false;
};

std::vector<kvm_cpuid_entry2> guest_cpuid(const std::vector<kvm_cpuid_entry2>& supported,
                                          uint32_t vcpu_id, CpuTopology topology);

// Physical address bits from leaf 0x80000008 (36 when the leaf is absent, as the SDM says).
uint32_t physical_address_bits(const std::vector<kvm_cpuid_entry2>& cpuid);

}  // namespace ember::x86
