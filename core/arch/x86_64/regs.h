// A vCPU's registers at the kernel's entry point, per boot protocol: long mode with paging and
// RSI at the zero page (Linux 64-bit), or flat 32-bit protected mode with RBX at the start info
// (PVH). Secondary vCPUs are left in their reset state for the kernel to start with INIT/SIPI.
#pragma once

#include "core/arch/x86_64/kernel_loader.h"
#include "core/base/error.h"
#include "core/kvm/vcpu.h"
#include "core/memory/guest_memory.h"

namespace ember::x86 {

// Guest-memory structures shared by all vCPUs: GDT, and page tables for the 64-bit protocol.
Result<void> write_cpu_boot_tables(const GuestMemory& mem, BootProtocol protocol);

Result<void> setup_boot_vcpu_registers(const Vcpu& vcpu, BootProtocol protocol, uint64_t entry);

// x87 control word and MXCSR as after FNINIT, which the kernel's early code assumes.
Result<void> setup_fpu(const Vcpu& vcpu);

}  // namespace ember::x86
