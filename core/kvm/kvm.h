// core/kvm: RAII wrappers over the KVM ioctl API. Kvm is /dev/kvm, Vm a VM fd, Vcpu a vCPU fd with
// its mapped kvm_run. Nothing here knows about boot protocols or devices.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/base/error.h"
#include "core/base/unique_fd.h"

namespace ember {

class Vm;

struct KvmCapability {
    long id;
    const char* name;
};
// Every capability ember relies on; Kvm::open() refuses a host that lacks one.
std::span<const KvmCapability> required_kvm_capabilities();

class Kvm {
  public:
    // Opens the device and checks the API version and every capability ember relies on, so a
    // missing one is a clear error at start rather than a failed ioctl mid-boot.
    static Result<Kvm> open(const std::string& path = "/dev/kvm");

    int fd() const { return fd_.get(); }
    int check_extension(long capability) const;
    size_t vcpu_mmap_size() const { return vcpu_mmap_size_; }
    // KVM_CAP_NESTED_STATE: the most bytes a vCPU's nested virtualization state takes; 0 where
    // this KVM keeps none.
    size_t nested_state_size() const { return nested_state_size_; }
    // KVM_CAP_EXCEPTION_PAYLOAD: whether a pending exception can be saved and set back as pending
    // (create_vm turns it on wherever it is listed).
    bool exception_payload() const { return exception_payload_; }
    Result<std::vector<kvm_cpuid_entry2>> supported_cpuid() const;
    Result<std::vector<uint32_t>> msr_index_list() const;
    Result<Vm> create_vm() const;

  private:
    Kvm(UniqueFd fd, size_t vcpu_mmap_size, size_t nested_state_size, bool exception_payload)
        : fd_(std::move(fd)),
          vcpu_mmap_size_(vcpu_mmap_size),
          nested_state_size_(nested_state_size),
          exception_payload_(exception_payload) {}
    UniqueFd fd_;
    size_t vcpu_mmap_size_;
    size_t nested_state_size_;
    bool exception_payload_;
};

}  // namespace ember
