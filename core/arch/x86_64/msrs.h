// Model-specific registers at boot: SYSCALL/SYSENTER cleared, TSC at 0, fast strings on, and
// write-back as the default memory type, as firmware would leave them.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <vector>

namespace ember::x86 {

std::vector<kvm_msr_entry> boot_msrs();

}  // namespace ember::x86
