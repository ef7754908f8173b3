// The VM-wide state KVM keeps outside the vCPUs: the two PICs, the IOAPIC, the PIT and the
// clock, captured with every vCPU stopped and put back before any runs. snapshot/ writes it to the
// state file, beside each vCPU's (vcpu_state.h).
#pragma once

#include <linux/kvm.h>

#include <concepts>
#include <type_traits>

#include "core/base/described.h"
#include "core/base/error.h"
#include "core/base/state_codec.h"
#include "core/kvm/vm.h"

namespace ember {

struct VmKvmState {
    kvm_irqchip pic_master{}, pic_slave{}, ioapic{};
    kvm_pit_state2 pit{};
    kvm_clock_data clock{};
};

// The VM section's fields (core/base/state_codec.h).
void describe_state(Is<VmKvmState> auto& s, auto&& v) {
    leaves(v, s.pic_master, s.pic_slave, s.ioapic, s.pit, s.clock);
}

Result<VmKvmState> capture_vm(const Vm& vm);
Result<void> restore_vm(const Vm& vm, const VmKvmState& state);

}  // namespace ember
