// Local APIC wiring at boot: LINT0 as ExtINT (the PIC's output) and LINT1 as NMI, as on a PC.
#pragma once

#include "vmm/base/error.h"
#include "vmm/kvm/vcpu.h"

namespace ember::x86 {

void set_lint_delivery_modes(kvm_lapic_state& lapic);
Result<void> setup_lapic(const Vcpu& vcpu);

}  // namespace ember::x86
