// A custom CPU template (PUT /cpu-config) applied to what a booting guest is given: KVM's supported
// CPUID with the template's bitmaps over it (ember's topology edits come after, and win, as
// Firecracker's normalization does), and the template's MSR values over ember's boot MSRs.
#pragma once

#include <linux/kvm.h>

#include <span>
#include <vector>

#include "core/base/error.h"
#include "core/config/cpu_template.h"
#include "core/kvm/kvm.h"
#include "core/kvm/vcpu.h"

namespace ember {

// `supported` with each modifier's bitmaps applied; a leaf it names that KVM lacks is added, as
// zeros under the modifier's bitmaps and flags.
std::vector<kvm_cpuid_entry2> templated_cpuid(std::vector<kvm_cpuid_entry2> supported,
                                              const CpuTemplate& t);

// Each capability the template asks for must be one this host's KVM has ("!N" asks nothing).
Result<void> check_kvm_capabilities(const Kvm& kvm, const CpuTemplate& t);

// The template's MSRs written to a booting vCPU: each bitmap over the value the vCPU has (ember's
// boot value, or KVM's reset value). An MSR KVM will not read or write fails the boot, named.
Result<void> apply_msr_modifiers(const Vcpu& vcpu, const CpuTemplate& t);

}  // namespace ember
