#include "core/arch/x86_64/acpi.h"

#include <cstdio>
#include <string>

#include "core/acpi/aml.h"
#include "core/acpi/tables.h"
#include "core/arch/x86_64/layout.h"
#include "core/base/hex.h"

namespace ember::x86 {
namespace {

namespace aml = acpi::aml;

constexpr uint8_t kVmGenIdNotification =
    0x80;                             // "the generation ID changed", as Windows and Linux expect
constexpr uint8_t kLapicNmiLint = 1;  // the MP table routes NMI to LINT1 as well

aml::Bytes com1(const LegacyPortDevice& d) {
    return aml::device(
        "COM1",
        {aml::name("_HID", aml::eisa_id("PNP0501")), aml::name("_UID", aml::integer(1)),
         aml::name("_CRS", aml::resource_template({aml::io_port(d.port, 8), aml::irq(d.irq)}))});
}

aml::Bytes i8042(const LegacyPortDevice& d) {
    const auto status_port = static_cast<uint16_t>(d.port + 4);
    return aml::device("PS2K",
                       {aml::name("_HID", aml::eisa_id("PNP0303")),
                        aml::name("_CRS", aml::resource_template({aml::io_port(d.port, 1),
                                                                  aml::io_port(status_port, 1),
                                                                  aml::irq(d.irq)}))});
}

aml::Bytes virtio_mmio(size_t index, const AcpiMachine::VirtioMmio& d) {
    char name[5];
    std::snprintf(name, sizeof name, "V%03zu", index);
    return aml::device(
        name, {aml::name("_HID", aml::string("LNRO0005")), aml::name("_UID", aml::integer(index)),
               aml::name("_CCA", aml::integer(1)),  // DMA is cache-coherent
               aml::name("_CRS", aml::resource_template(
                                     {aml::memory32_fixed(static_cast<uint32_t>(d.base),
                                                          static_cast<uint32_t>(d.size), true),
                                      aml::interrupt(d.gsi, true, false, false)}))});
}

// Microsoft's "Virtual Machine Generation ID" (2012): ADDR gives the ID's guest address as a
// package of its low and high halves. Linux's vmgenid driver matches the _CID.
aml::Bytes vmgenid() {
    return aml::device("VGEN",
                       {aml::name("_HID", aml::string("VMGENCTR")),
                        aml::name("_CID", aml::string("VM_GEN_COUNTER")),
                        aml::name("_DDN", aml::string("VM_Gen_Counter")),
                        aml::method("ADDR", 0, false,
                                    {aml::ret(aml::package({aml::integer(kVmGenIdAddr & 0xffffffff),
                                                            aml::integer(kVmGenIdAddr >> 32)}))})});
}

// ACPI0013: the guest runs _EVT with the interrupt's number when the line fires.
aml::Bytes generic_event_device() {
    return aml::device(
        "GED_",
        {aml::name("_HID", aml::string("ACPI0013")), aml::name("_UID", aml::integer(0)),
         aml::name("_CRS", aml::resource_template({aml::interrupt(kGedGsi, true, false, false)})),
         aml::method(
             "_EVT", 1, true,
             {aml::if_then(aml::equal(aml::arg(0), aml::integer(kGedGsi)),
                           {aml::notify("\\_SB_.VGEN", aml::integer(kVmGenIdNotification))})})});
}

struct Placer {
    const GuestMemory& mem;
    uint64_t next = kAcpiTablesAddr;

    Result<uint64_t> place(const std::vector<uint8_t>& table, const char* what) {
        const uint64_t at = next;
        if (table.size() > kAcpiAreaEnd - at)
            return fail(std::string("ACPI ") + what + " of " + std::to_string(table.size()) +
                        " bytes does not fit below " + hex(kAcpiAreaEnd));
        EMBER_TRY(mem.write(at, table), std::string("ACPI ") + what);
        next = (at + table.size() + 15) & ~uint64_t{15};
        return at;
    }
};

}  // namespace

std::vector<uint8_t> dsdt_definition_block(const AcpiMachine& machine) {
    std::vector<aml::Bytes> devices{com1(machine.com1), i8042(machine.i8042)};
    for (size_t i = 0; i < machine.virtio.size(); ++i)
        devices.push_back(virtio_mmio(i, machine.virtio[i]));
    devices.push_back(vmgenid());
    devices.push_back(generic_event_device());
    // _S5: the sleep type the guest writes to power off (SLP_TYPa, SLP_TYPb).
    return aml::joined(
        {aml::scope("\\_SB_", devices),
         aml::name("\\_S5_", aml::package({aml::integer(kSleepTypeS5), aml::integer(0)}))});
}

Result<uint64_t> write_acpi_tables(const GuestMemory& mem, const AcpiMachine& machine) {
    Placer placer{mem};
    auto dsdt = placer.place(acpi::dsdt(dsdt_definition_block(machine)), "DSDT");
    EMBER_TRY(dsdt);
    using Space = acpi::ByteRegister::Space;
    auto fadt = placer.place(acpi::fadt({*dsdt,
                                         {Space::SystemIo, kSleepControlPort},
                                         {Space::SystemIo, kSleepStatusPort},
                                         true}),
                             "FADT");
    EMBER_TRY(fadt);
    auto madt = placer.place(acpi::madt({static_cast<uint32_t>(kLapicAddr), machine.vcpu_count,
                                         static_cast<uint8_t>(machine.vcpu_count),
                                         static_cast<uint32_t>(kIoapicAddr), kLapicNmiLint}),
                             "MADT");
    EMBER_TRY(madt);
    const uint64_t tables[] = {*fadt, *madt};
    auto xsdt = placer.place(acpi::xsdt(tables), "XSDT");
    EMBER_TRY(xsdt);
    EMBER_TRY(mem.write(kAcpiRsdpAddr, acpi::rsdp(*xsdt)), "ACPI RSDP");
    return kAcpiRsdpAddr;
}

}  // namespace ember::x86
