// The Intel MultiProcessor table at kMptableAddr: CPUs, one ISA bus, the IOAPIC, GSIs 0-23
// edge-triggered active-high on IOAPIC pins 0-23, LINT0 ExtINT and LINT1 NMI. Without it (and
// without ACPI) Linux runs on the PIC alone and no GSI above 15 works.
#pragma once

#include <cstdint>

#include "core/base/error.h"
#include "core/memory/guest_memory.h"

namespace ember::x86 {

Result<void> write_mptable(const GuestMemory& mem, uint32_t vcpu_count);

}  // namespace ember::x86
