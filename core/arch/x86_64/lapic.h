// Local APIC wiring at boot: LINT0 as ExtINT (the PIC's output) and LINT1 as NMI, as on a PC.
#pragma once

#include "core/base/error.h"
#include "core/kvm/vcpu.h"

namespace ember::x86 {

void set_lint_delivery_modes(kvm_lapic_state& lapic);
Result<void> setup_lapic(const Vcpu& vcpu);

}  // namespace ember::x86
