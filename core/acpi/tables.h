// The ACPI system description tables ember gives a guest, as bytes with their lengths and checksums
// filled in (ACPI 6.5, chapter 5.2): the RSDP that points at the XSDT, the XSDT that lists the
// others, a hardware-reduced FADT, the MADT and a DSDT around a definition block (aml.h). Where
// they go in guest memory is the architecture's choice; a table that points at another takes that
// table's guest address.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/acpi/aml.h"

namespace ember::acpi {

using aml::Bytes;

// A register as ACPI addresses it (the Generic Address Structure), here always one byte wide.
struct ByteRegister {
    enum class Space : uint8_t { SystemMemory = 0, SystemIo = 1 } space;
    uint64_t address;
};

Bytes rsdp(uint64_t xsdt_addr);
Bytes xsdt(std::span<const uint64_t> table_addrs);

struct FadtSpec {
    uint64_t dsdt_addr;
    // Hardware-reduced ACPI has no PM1 blocks: the guest powers off by writing SLP_TYP and SLP_EN
    // to the sleep control register.
    ByteRegister sleep_control;
    ByteRegister sleep_status;
    bool has_i8042;
};
Bytes fadt(const FadtSpec& spec);

struct MadtSpec {
    uint32_t lapic_addr;
    uint32_t cpu_count;  // Local APIC ids 0 .. cpu_count - 1
    uint8_t ioapic_id;
    uint32_t ioapic_addr;
    uint8_t nmi_lint;  // the LINT pin every CPU's NMI comes in on
};
Bytes madt(const MadtSpec& spec);

Bytes dsdt(const Bytes& definition_block);

// The byte that makes `bytes` sum to zero, as every table's checksum field holds.
uint8_t checksum(std::span<const uint8_t> bytes);

}  // namespace ember::acpi
