// The x86 machine as ACPI describes it, written into the BIOS area of guest memory: RSDP at
// kAcpiRsdpAddr, then XSDT, FADT, MADT and DSDT. The DSDT names COM1, the i8042, each virtio-mmio
// device (LNRO0005), the VM generation ID (VMGenID) and a Generic Event Device whose interrupt
// tells the guest the generation changed. Hardware-reduced ACPI: the guest powers off through the
// sleep control register. A kernel without ACPI ignores all of it and reads the MP table.
#pragma once

#include <cstdint>
#include <vector>

#include "core/base/error.h"
#include "core/memory/guest_memory.h"

namespace ember::x86 {

// The 128 KiB below 1 MiB where a PC's firmware keeps its tables; not RAM in the e820 map.
inline constexpr uint64_t kAcpiRsdpAddr = 0xe0000;
inline constexpr uint64_t kVmGenIdAddr = 0xe0040;  // 16 bytes, 8-byte aligned, as the spec asks
inline constexpr uint64_t kAcpiTablesAddr = 0xe0100;
inline constexpr uint64_t kAcpiAreaEnd = 0x100000;
inline constexpr uint64_t kVmGenIdBytes = 16;

// I/O ports of the hardware-reduced sleep registers (FADT SLEEP_CONTROL_REG, SLEEP_STATUS_REG).
inline constexpr uint16_t kSleepControlPort = 0x600;
inline constexpr uint16_t kSleepStatusPort = 0x601;
// SLEEP_CONTROL_REG: SLP_TYP in bits 2-4, SLP_EN in bit 5. _S5 names sleep type 5.
inline constexpr uint8_t kSleepTypeS5 = 5;

// The interrupt line of the Generic Event Device: ISA IRQ 3 (COM2's, and ember has no COM2), so
// that every line from kFirstMmioGsi up stays for virtio devices.
inline constexpr uint32_t kGedGsi = 3;

struct LegacyPortDevice {
    uint16_t port;
    uint8_t irq;
};

struct AcpiMachine {
    uint32_t vcpu_count;
    LegacyPortDevice com1;   // 8 ports from `port`
    LegacyPortDevice i8042;  // data port; command and status at port + 4
    struct VirtioMmio {
        uint64_t base;
        uint64_t size;
        uint32_t gsi;
    };
    std::vector<VirtioMmio> virtio;
};

// The DSDT's definition block for `machine` (its AML, without the table header).
std::vector<uint8_t> dsdt_definition_block(const AcpiMachine& machine);

// Writes every table; returns the RSDP's address for the zero page or the PVH start info.
Result<uint64_t> write_acpi_tables(const GuestMemory& mem, const AcpiMachine& machine);

}  // namespace ember::x86
