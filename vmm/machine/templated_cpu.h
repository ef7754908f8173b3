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

// `supported` with each modifier's bitmaps and flags over the entry of its (leaf, subleaf), less
// the entries past the highest basic leaf, extended leaf and leaf-7 subleaf it then gives. A leaf
// KVM does not offer is refused, in Firecracker's words: a typo must not pass for a change.
Result<std::vector<kvm_cpuid_entry2>> templated_cpuid(std::vector<kvm_cpuid_entry2> supported,
                                                      const CpuTemplate& t);

// The capabilities the template asks for, taken in order ("N" adds N, "!N" takes it off), must be
// ones this host's KVM has.
Result<void> check_kvm_capabilities(const Kvm& kvm, const CpuTemplate& t);

// The template's MSRs written to a booting vCPU, each bitmap over KVM's reset value, before
// ember's boot MSRs: as in Firecracker, the boot protocol's values win where both set one. An MSR
// KVM will not read or write fails the boot, named.
Result<void> apply_msr_modifiers(const Vcpu& vcpu, const CpuTemplate& t);

}  // namespace ember
