// A vCPU's state as KVM keeps it (registers, FPU/XSAVE, MSRs, LAPIC, events, and the nested
// virtualization state of a guest that uses it), captured from a stopped vCPU and put back in the
// order KVM needs: the MP state read first, the nested state set right after the special
// registers that enable it, the LAPIC set before the MSRs, the TSC first among them and its
// deadline last. snapshot/ writes it to the state file.
#pragma once

#include <linux/kvm.h>

#include <concepts>
#include <cstdint>
#include <optional>
#include <span>
#include <type_traits>
#include <vector>

#include "core/base/described.h"
#include "core/base/error.h"
#include "core/base/state_codec.h"
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
    // KVM_GET_NESTED_STATE's bytes while the guest uses nested virtualization (a nested guest
    // running, SVM's GIF clear, VMX's VMXON); empty otherwise, and then nothing is set back.
    std::vector<uint8_t> nested;
};

// The most bytes a vCPU's nested state takes: the header, and VMX's two VMCSs after it.
inline constexpr size_t kMaxNestedStateBytes =
    sizeof(kvm_nested_state) + 2 * KVM_STATE_NESTED_VMX_VMCS_SIZE;
// The vCPU section's fields (core/base/state_codec.h): version 2 added the nested state.
void describe_state(Is<VcpuState> auto& s, auto&& v) {
    v(StateField{.name = "CPUID entries", .max = 1024}, s.cpuid);
    leaves(v, s.tsc_khz, s.regs, s.sregs, s.xsave, s.xcrs);
    v(StateField{.name = "MSRs", .max = 4096}, s.msrs);
    leaves(v, s.lapic, s.mp_state, s.events, s.debugregs);
    v(StateField{.name = "nested state entries", .since = 2, .max = kMaxNestedStateBytes},
      s.nested);
}

// Whether `state` (KVM_GET_NESTED_STATE's) holds more than a vCPU that never used nested
// virtualization has: such a state need not be saved.
bool nested_state_in_use(std::span<const uint8_t> state);
// A saved nested state's frame, before KVM judges the rest: a header whose size is the bytes
// given, of a format KVM knows, within kMaxNestedStateBytes.
Result<void> check_nested_state(std::span<const uint8_t> state);

// KVM_GET_VCPU_EVENTS's answer as a snapshot keeps it. Where KVM_CAP_EXCEPTION_PAYLOAD is on
// (Kvm::create_vm), only an exception still pending needs its format: without one, the events are
// written as a KVM without the capability writes them, which any host's KVM takes back.
kvm_vcpu_events events_to_save(kvm_vcpu_events events);
// XCR0 as the vCPU saved it (x87 alone, as at reset, where it saved none).
uint64_t saved_xcr0(const VcpuState& v);
// Whether `xcrs` hold nothing but the XCR0 every new vCPU has (x87 state alone), or nothing.
bool xcrs_as_at_reset(const kvm_xcrs& xcrs);

// `nested_state_size`: Kvm::nested_state_size(); 0 reads no nested state.
Result<VcpuState> capture_vcpu(const Vcpu& vcpu, std::span<const uint32_t> msr_indices,
                               std::vector<kvm_cpuid_entry2> cpuid, size_t nested_state_size);
// What the caller knows of the vCPU a state goes into, which spares KVM calls (each takes KVM's
// vCPU load and put: 7-12 us on our paravirtual-KVM hosts).
struct VcpuAsMade {
    // KVM made it and nothing has run it or set its state since (its CPUID aside): what KVM gives
    // a new vCPU and the state holds too is not set again (the debug registers, which a guest that
    // never used them saved as at reset).
    bool fresh = false;
    // It already has the state's CPUID.
    bool cpuid_in_place = false;
    // Its TSC rate (KVM_GET_TSC_KHZ), where already read: every vCPU KVM makes runs at its VM's.
    std::optional<uint32_t> tsc_khz;
};
Result<void> restore_vcpu(const Vcpu& vcpu, const VcpuState& state, const VcpuAsMade& as_made = {});
// Whether `regs` are what KVM gives a new vCPU: DR0-3 clear, DR6 and DR7 at their reset values. (A
// guest whose CPUID has RTM keeps DR6 at 0xfffe0ff0: its registers are set back, a saving lost.)
bool debugregs_as_at_reset(const kvm_debugregs& regs);

}  // namespace ember
