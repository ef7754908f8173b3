// A vCPU's state as KVM keeps it (registers, FPU/XSAVE, MSRs, LAPIC, events), captured from a
// stopped vCPU and put back in the order KVM needs: the MP state read first, the LAPIC set before
// the MSRs, the TSC first among them and its deadline last. snapshot/ writes it to the state file.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <span>
#include <vector>

#include "core/base/error.h"
#include "core/kvm/kvm_abi.h"
#include "core/kvm/vcpu.h"

namespace ember {

struct VcpuState {
    std::vector<kvm_cpuid_entry2> cpuid;
    uint32_t tsc_khz = 0;
    kvm_regs regs{};
    kvm_sregs sregs{};
    kvm_abi::Xsave xsave{};
    kvm_xcrs xcrs{};
    std::vector<kvm_msr_entry> msrs;
    kvm_lapic_state lapic{};
    kvm_mp_state mp_state{};
    kvm_vcpu_events events{};
    kvm_debugregs debugregs{};
};

Result<VcpuState> capture_vcpu(const Vcpu& vcpu, std::span<const uint32_t> msr_indices,
                               std::vector<kvm_cpuid_entry2> cpuid);
// With `cpuid_in_place`, the vCPU already has the state's CPUID and is not given it again.
Result<void> restore_vcpu(const Vcpu& vcpu, const VcpuState& state, bool cpuid_in_place = false);

}  // namespace ember
