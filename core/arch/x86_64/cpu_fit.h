// Whether a guest's CPU, as a snapshot recorded it, can go on on this host: every CPUID feature,
// XSAVE component (XCR0) and MSR the guest was given must be one this host's KVM offers. A guest
// that finds an instruction gone after a restore dies of SIGILL, or its kernel of a #GP, long after
// the load said yes; a load checks first and names what is missing.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace ember::x86 {

// What the guest was given, in the words of /proc/cpuinfo where the bit has a name there.
struct CpuShortfall {
    std::vector<std::string> features;  // CPUID feature bits
    std::vector<std::string> xsave;     // XCR0 components the guest enabled
    std::vector<uint32_t> msrs;         // MSRs saved, not 0, that this host's KVM does not list

    bool empty() const { return features.empty() && xsave.empty() && msrs.empty(); }
};

// `guest`: the CPUID a vCPU was given; `xcr0`: its XCR0; `guest_msrs`: the MSRs saved for it (one
// at 0 that this host does not list is not missing: see not_restored()).
// `host`: KVM_GET_SUPPORTED_CPUID here; `host_msrs`: KVM_GET_MSR_INDEX_LIST here. Bits ember sets
// itself (the hypervisor bit, HTT) and bits that mirror a control register (OSXSAVE, OSPKE) are
// not features a host offers, and are not compared.
CpuShortfall cpu_shortfall(std::span<const kvm_cpuid_entry2> guest, uint64_t xcr0,
                           std::span<const kvm_msr_entry> guest_msrs,
                           std::span<const kvm_cpuid_entry2> host,
                           std::span<const uint32_t> host_msrs);

// "this host lacks rdrand, avx2 that the guest was booted with; ..." for a load's error.
std::string describe(const CpuShortfall& s);

// A CPUID register whose bits are features a host offers or lacks (`reg`: 0 for EAX to 3 for EDX),
// and the bits of it cpu_shortfall() compares: what a fleet's template intersects.
struct FeatureBits {
    uint32_t leaf;
    uint32_t subleaf;
    unsigned reg;
    uint32_t compared;
};
std::vector<FeatureBits> feature_bits();

// The saved MSRs a load leaves out: at 0, and unknown to this host's KVM (`host_msrs`).
bool not_restored(const kvm_msr_entry& m, std::span<const uint32_t> host_msrs);

// The vendor string of leaf 0 (a byte outside printable ASCII as '?') ("GenuineIntel",
// "AuthenticAMD"); empty when the leaf is absent.
std::string cpu_vendor(std::span<const kvm_cpuid_entry2> cpuid);

}  // namespace ember::x86
