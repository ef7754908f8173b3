// A KVM vCPU: its fd, its mapped kvm_run, and the register/state ioctls.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <span>
#include <vector>

#include "core/base/error.h"
#include "core/base/mapping.h"
#include "core/base/unique_fd.h"
#include "core/kvm/kvm_abi.h"

namespace ember {

class Vcpu {
  public:
    Vcpu(uint32_t id, UniqueFd fd, Mapping run)
        : id_(id), fd_(std::move(fd)), run_(std::move(run)) {}

    uint32_t id() const { return id_; }
    int fd() const { return fd_.get(); }
    kvm_run* run_struct() const { return reinterpret_cast<kvm_run*>(run_.data()); }
    size_t run_size() const { return run_.size(); }

    // KVM_RUN; returns 0 or -errno (EINTR after a kick is normal, not an error).
    int run() const;

    Result<kvm_regs> get_regs() const;
    Result<void> set_regs(const kvm_regs& regs) const;
    Result<kvm_sregs> get_sregs() const;
    Result<void> set_sregs(const kvm_sregs& sregs) const;
    Result<kvm_fpu> get_fpu() const;
    Result<void> set_fpu(const kvm_fpu& fpu) const;
    Result<void> set_cpuid(std::span<const kvm_cpuid_entry2> entries) const;
    Result<void> set_msrs(std::span<const kvm_msr_entry> entries) const;
    Result<std::vector<kvm_msr_entry>> get_msrs(std::span<const uint32_t> indices) const;
    Result<kvm_lapic_state> get_lapic() const;
    Result<void> set_lapic(const kvm_lapic_state& lapic) const;
    Result<kvm_vcpu_events> get_vcpu_events() const;
    Result<void> set_vcpu_events(const kvm_vcpu_events& events) const;
    Result<kvm_mp_state> get_mp_state() const;
    Result<void> set_mp_state(const kvm_mp_state& state) const;
    Result<kvm_abi::Xsave> get_xsave() const;
    Result<void> set_xsave(const kvm_abi::Xsave& xsave) const;
    Result<kvm_xcrs> get_xcrs() const;
    Result<void> set_xcrs(const kvm_xcrs& xcrs) const;
    Result<kvm_debugregs> get_debugregs() const;
    Result<void> set_debugregs(const kvm_debugregs& regs) const;
    // KVM_GET_NESTED_STATE into `max_size` bytes (Kvm::nested_state_size()): the header and the
    // data after it, as many bytes as the header's size says.
    Result<std::vector<uint8_t>> get_nested_state(size_t max_size) const;
    Result<void> set_nested_state(std::span<const uint8_t> state) const;
    Result<uint32_t> get_tsc_khz() const;
    // Maps [gpa, gpa + size) in the VM's stage-2 page tables now, as the guest's first touch of
    // each page would, for a KVM with KVM_CAP_PRE_FAULT_MEMORY (kvm_abi.h). Before KVM_RUN. An
    // error of kind Unavailable: this KVM cannot pre-fault at all.
    Result<void> pre_fault_memory(uint64_t gpa, uint64_t size) const;
    Result<void> set_tsc_khz(uint32_t khz) const;

  private:
    uint32_t id_;
    UniqueFd fd_;
    Mapping run_;
};

}  // namespace ember
