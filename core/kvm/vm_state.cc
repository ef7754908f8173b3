#include "core/kvm/vm_state.h"

namespace ember {

Result<VmKvmState> capture_vm(const Vm& vm) {
    VmKvmState s;
    auto master = vm.get_irqchip(KVM_IRQCHIP_PIC_MASTER);
    auto slave = vm.get_irqchip(KVM_IRQCHIP_PIC_SLAVE);
    auto ioapic = vm.get_irqchip(KVM_IRQCHIP_IOAPIC);
    auto pit = vm.get_pit2();
    auto clock = vm.get_clock();
    EMBER_TRY(master);
    EMBER_TRY(slave);
    EMBER_TRY(ioapic);
    EMBER_TRY(pit);
    EMBER_TRY(clock);
    s.pic_master = *master;
    s.pic_slave = *slave;
    s.ioapic = *ioapic;
    s.pit = *pit;
    s.clock = *clock;
    return s;
}

Result<void> restore_vm(const Vm& vm, const VmKvmState& s) {
    for (const auto* chip : {&s.pic_master, &s.pic_slave, &s.ioapic})
        EMBER_TRY(vm.set_irqchip(*chip));
    EMBER_TRY(vm.set_pit2(s.pit));
    return vm.set_clock(s.clock);
}

}  // namespace ember
