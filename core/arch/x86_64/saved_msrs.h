// Which MSRs a snapshot saves: of those this host's KVM lists (KVM_GET_MSR_INDEX_LIST), the ones
// that hold the guest's own state. Read-only MSRs that describe the host (its microcode, platform
// and perf capabilities, the CPU's vulnerabilities, an SMI count) are left to the
// destination's KVM, which gives a restored vCPU its own host's values, so a snapshot does not
// carry one host's description to another, nor fail a load on a KVM that lists none of them. An
// MSR of a feature the guest was not given (UMWAIT_CONTROL without waitpkg) is not saved either:
// its value is KVM's reset value, and it would tie the snapshot to hosts that list it.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <span>
#include <vector>

namespace ember::x86 {

// `host_list`: KVM_GET_MSR_INDEX_LIST here; `guest_cpuid`: the vCPU's CPUID; `template_msrs`: the
// MSRs the guest's CPU template set, saved whatever they are, as the template's values must
// travel with the guest. In `host_list`'s order.
std::vector<uint32_t> msrs_to_save(std::span<const uint32_t> host_list,
                                   std::span<const kvm_cpuid_entry2> guest_cpuid,
                                   std::span<const uint32_t> template_msrs);

// Of `host_list`, the MSRs ember knows nothing of: neither the guest's state above nor a host's
// description it leaves. A newer KVM may list guest state there that a snapshot then does not
// carry, so a snapshot names them.
std::vector<uint32_t> unclassified_msrs(std::span<const uint32_t> host_list);

}  // namespace ember::x86
