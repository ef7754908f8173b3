// A CPUID entry as KVM_GET_SUPPORTED_CPUID gives one, for the tests of what ember does with a
// guest's CPUID: leaves 7 and 0xD carry KVM's significant-index flag, as KVM sets it.
#pragma once

#include <linux/kvm.h>

#include <cstdint>

namespace ember::testing {

inline kvm_cpuid_entry2 cpuid_entry(uint32_t leaf, uint32_t subleaf, uint32_t eax, uint32_t ebx,
                                    uint32_t ecx, uint32_t edx) {
    kvm_cpuid_entry2 e{};
    e.function = leaf;
    e.index = subleaf;
    e.flags = leaf == 0x7 || leaf == 0xd ? KVM_CPUID_FLAG_SIGNIFCANT_INDEX : 0;
    e.eax = eax;
    e.ebx = ebx;
    e.ecx = ecx;
    e.edx = edx;
    return e;
}

}  // namespace ember::testing
