// A KVM VM: memory slots, the in-kernel irqchip and PIT, irqfds and ioeventfds, vCPU creation.
#pragma once

#include <linux/kvm.h>

#include <cstdint>

#include "vmm/base/error.h"
#include "vmm/base/unique_fd.h"
#include "vmm/kvm/vcpu.h"

namespace ember {

class Vm {
  public:
    Vm(UniqueFd fd, size_t vcpu_mmap_size) : fd_(std::move(fd)), vcpu_mmap_size_(vcpu_mmap_size) {}

    int fd() const { return fd_.get(); }

    Result<void> set_user_memory_region(uint32_t slot, uint64_t guest_addr, uint64_t size,
                                        void* host_addr, uint32_t flags = 0) const;
    Result<void> set_tss_address(uint64_t addr) const;
    Result<void> set_identity_map_address(uint64_t addr) const;
    Result<void> create_irqchip() const;
    // KVM's PIT with the speaker port left to KVM's dummy, so no exit per port-0x61 access.
    Result<void> create_pit2() const;
    Result<void> register_irqfd(int event_fd, uint32_t gsi) const;
    Result<void> unregister_irqfd(int event_fd, uint32_t gsi) const;
    // A guest write of `datamatch` (4 bytes) at `addr` in MMIO space signals event_fd in the
    // kernel, with no exit to us.
    Result<void> register_ioeventfd(int event_fd, uint64_t addr, uint32_t datamatch) const;
    Result<void> unregister_ioeventfd(int event_fd, uint64_t addr, uint32_t datamatch) const;
    Result<Vcpu> create_vcpu(uint32_t id) const;

  private:
    UniqueFd fd_;
    size_t vcpu_mmap_size_;
};

}  // namespace ember
