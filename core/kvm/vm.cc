#include "core/kvm/vm.h"

#include <sys/ioctl.h>
#include <sys/mman.h>

#include <string>

#include "core/base/hex.h"

namespace ember {

Result<void> Vm::set_user_memory_region(uint32_t slot, uint64_t guest_addr, uint64_t size,
                                        void* host_addr, uint32_t flags) const {
    kvm_userspace_memory_region region{};
    region.slot = slot;
    region.flags = flags;
    region.guest_phys_addr = guest_addr;
    region.memory_size = size;
    region.userspace_addr = reinterpret_cast<uint64_t>(host_addr);
    if (::ioctl(fd_.get(), KVM_SET_USER_MEMORY_REGION, &region) < 0)
        return fail_errno("KVM_SET_USER_MEMORY_REGION slot " + std::to_string(slot));
    return {};
}

Result<void> Vm::set_tss_address(uint64_t addr) const {
    if (::ioctl(fd_.get(), KVM_SET_TSS_ADDR, static_cast<unsigned long>(addr)) < 0)
        return fail_errno("KVM_SET_TSS_ADDR");
    return {};
}

Result<void> Vm::set_identity_map_address(uint64_t addr) const {
    if (::ioctl(fd_.get(), KVM_SET_IDENTITY_MAP_ADDR, &addr) < 0)
        return fail_errno("KVM_SET_IDENTITY_MAP_ADDR");
    return {};
}

Result<void> Vm::create_irqchip() const {
    if (::ioctl(fd_.get(), KVM_CREATE_IRQCHIP, 0) < 0) return fail_errno("KVM_CREATE_IRQCHIP");
    return {};
}

Result<void> Vm::enable_cap(uint32_t capability, uint64_t arg) const {
    kvm_enable_cap c{};
    c.cap = capability;
    c.args[0] = arg;
    if (::ioctl(fd_.get(), KVM_ENABLE_CAP, &c) < 0)
        return fail_errno("KVM_ENABLE_CAP " + std::to_string(capability));
    return {};
}

Result<void> Vm::create_pit2() const {
    kvm_pit_config config{};
    config.flags = KVM_PIT_SPEAKER_DUMMY;
    if (::ioctl(fd_.get(), KVM_CREATE_PIT2, &config) < 0) return fail_errno("KVM_CREATE_PIT2");
    return {};
}

Result<void> Vm::register_irqfd(int event_fd, uint32_t gsi) const {
    kvm_irqfd request{};
    request.fd = static_cast<uint32_t>(event_fd);
    request.gsi = gsi;
    if (::ioctl(fd(), KVM_IRQFD, &request) < 0)
        return fail_errno("KVM_IRQFD for GSI " + std::to_string(gsi));
    return {};
}

namespace {

Result<void> ioeventfd(int vm_fd, int event_fd, uint64_t addr, uint32_t datamatch, uint32_t flags) {
    kvm_ioeventfd request{};
    request.datamatch = datamatch;
    request.addr = addr;
    request.len = 4;
    request.fd = event_fd;
    request.flags = KVM_IOEVENTFD_FLAG_DATAMATCH | flags;
    if (::ioctl(vm_fd, KVM_IOEVENTFD, &request) < 0)
        return fail_errno(std::string(flags ? "KVM_IOEVENTFD deassign" : "KVM_IOEVENTFD") + " at " +
                          hex(addr));
    return {};
}

}  // namespace

Result<void> Vm::register_ioeventfd(int event_fd, uint64_t addr, uint32_t datamatch) const {
    return ioeventfd(fd(), event_fd, addr, datamatch, 0);
}

Result<void> Vm::unregister_ioeventfd(int event_fd, uint64_t addr, uint32_t datamatch) const {
    return ioeventfd(fd(), event_fd, addr, datamatch, KVM_IOEVENTFD_FLAG_DEASSIGN);
}

Result<Vcpu> Vm::create_vcpu(uint32_t id) const {
    int raw = ::ioctl(fd_.get(), KVM_CREATE_VCPU, static_cast<unsigned long>(id));
    if (raw < 0) return fail_errno("KVM_CREATE_VCPU " + std::to_string(id));
    UniqueFd fd(raw);
    auto run = Mapping::map(vcpu_mmap_size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
    EMBER_TRY(run, "vCPU " + std::to_string(id) + " kvm_run");
    return Vcpu(id, std::move(fd), std::move(*run));
}

}  // namespace ember

namespace ember {

Result<kvm_irqchip> Vm::get_irqchip(uint32_t chip_id) const {
    kvm_irqchip chip{};
    chip.chip_id = chip_id;
    if (::ioctl(fd_.get(), KVM_GET_IRQCHIP, &chip) < 0)
        return fail_errno("KVM_GET_IRQCHIP " + std::to_string(chip_id));
    return chip;
}

Result<void> Vm::set_irqchip(const kvm_irqchip& chip) const {
    if (::ioctl(fd_.get(), KVM_SET_IRQCHIP, &chip) < 0)
        return fail_errno("KVM_SET_IRQCHIP " + std::to_string(chip.chip_id));
    return {};
}

Result<kvm_pit_state2> Vm::get_pit2() const {
    kvm_pit_state2 pit{};
    if (::ioctl(fd_.get(), KVM_GET_PIT2, &pit) < 0) return fail_errno("KVM_GET_PIT2");
    return pit;
}

Result<void> Vm::set_pit2(const kvm_pit_state2& pit) const {
    if (::ioctl(fd_.get(), KVM_SET_PIT2, &pit) < 0) return fail_errno("KVM_SET_PIT2");
    return {};
}

Result<std::vector<uint64_t>> Vm::get_dirty_log(uint32_t slot, uint64_t pages) const {
    std::vector<uint64_t> bitmap((pages + 63) / 64, 0);
    kvm_dirty_log log{};
    log.slot = slot;
    log.dirty_bitmap = bitmap.data();
    if (::ioctl(fd_.get(), KVM_GET_DIRTY_LOG, &log) < 0)
        return fail_errno("KVM_GET_DIRTY_LOG slot " + std::to_string(slot));
    return bitmap;
}

Result<kvm_clock_data> Vm::get_clock() const {
    kvm_clock_data clock{};
    if (::ioctl(fd_.get(), KVM_GET_CLOCK, &clock) < 0) return fail_errno("KVM_GET_CLOCK");
    return clock;
}

Result<void> Vm::set_clock(const kvm_clock_data& clock) const {
    kvm_clock_data c{};
    c.clock = clock.clock;  // only the clock value; flags and the rest are outputs of GET
    if (::ioctl(fd_.get(), KVM_SET_CLOCK, &c) < 0) return fail_errno("KVM_SET_CLOCK");
    return {};
}

}  // namespace ember
