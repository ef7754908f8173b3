// A KVM VM: memory slots, the in-kernel irqchip and PIT, irqfds and ioeventfds, vCPU creation.
#pragma once

#include <linux/kvm.h>

#include <cstdint>

#include "core/base/error.h"
#include "core/base/unique_fd.h"
#include "core/kvm/vcpu.h"

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
    // KVM_ENABLE_CAP on the VM, with `arg` as its first argument.
    Result<void> enable_cap(uint32_t capability, uint64_t arg) const;
    // KVM's PIT with the speaker port left to KVM's dummy, so no exit per port-0x61 access.
    Result<void> create_pit2() const;
    Result<void> register_irqfd(int event_fd, uint32_t gsi) const;
    // A guest write of `datamatch` (4 bytes) at `addr` in MMIO space signals event_fd in the
    // kernel, with no exit to us.
    Result<void> register_ioeventfd(int event_fd, uint64_t addr, uint32_t datamatch) const;
    Result<void> unregister_ioeventfd(int event_fd, uint64_t addr, uint32_t datamatch) const;
    Result<Vcpu> create_vcpu(uint32_t id) const;

    // In-kernel device state, for snapshots. chip_id: KVM_IRQCHIP_PIC_MASTER, _PIC_SLAVE, _IOAPIC.
    Result<kvm_irqchip> get_irqchip(uint32_t chip_id) const;
    Result<void> set_irqchip(const kvm_irqchip& chip) const;
    Result<kvm_pit_state2> get_pit2() const;
    Result<void> set_pit2(const kvm_pit_state2& pit) const;
    Result<kvm_clock_data> get_clock() const;
    // The slot's pages the guest wrote since the last call (a bit per page), cleared as read.
    Result<std::vector<uint64_t>> get_dirty_log(uint32_t slot, uint64_t pages) const;
    Result<void> set_clock(const kvm_clock_data& clock) const;

  private:
    UniqueFd fd_;
    size_t vcpu_mmap_size_;
};

}  // namespace ember
