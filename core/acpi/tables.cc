#include "core/acpi/tables.h"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <numeric>
#include <string_view>

namespace ember::acpi {
namespace {

constexpr char kOemId[6] = {'E', 'M', 'B', 'E', 'R', ' '};
constexpr char kCreatorId[4] = {'E', 'M', 'B', 'R'};
constexpr uint32_t kCreatorRevision = 1;

#pragma pack(push, 1)
struct SdtHeader {
    char signature[4];
    uint32_t length;
    uint8_t revision;
    uint8_t checksum;
    char oem_id[6];
    char oem_table_id[8];
    uint32_t oem_revision;
    char creator_id[4];
    uint32_t creator_revision;
};
struct Rsdp {
    char signature[8];
    uint8_t checksum;  // of the first 20 bytes, the ACPI 1.0 structure
    char oem_id[6];
    uint8_t revision;
    uint32_t rsdt_addr;
    uint32_t length;
    uint64_t xsdt_addr;
    uint8_t extended_checksum;
    uint8_t reserved[3];
};
struct GenericAddress {
    uint8_t space_id;
    uint8_t bit_width;
    uint8_t bit_offset;
    uint8_t access_size;
    uint64_t address;
};
struct Fadt {
    SdtHeader header;
    uint32_t firmware_ctrl;
    uint32_t dsdt;
    uint8_t reserved0;
    uint8_t preferred_pm_profile;
    uint16_t sci_int;
    uint32_t smi_cmd;
    uint8_t acpi_enable;
    uint8_t acpi_disable;
    uint8_t s4bios_req;
    uint8_t pstate_cnt;
    uint32_t pm1a_evt_blk;
    uint32_t pm1b_evt_blk;
    uint32_t pm1a_cnt_blk;
    uint32_t pm1b_cnt_blk;
    uint32_t pm2_cnt_blk;
    uint32_t pm_tmr_blk;
    uint32_t gpe0_blk;
    uint32_t gpe1_blk;
    uint8_t pm1_evt_len;
    uint8_t pm1_cnt_len;
    uint8_t pm2_cnt_len;
    uint8_t pm_tmr_len;
    uint8_t gpe0_blk_len;
    uint8_t gpe1_blk_len;
    uint8_t gpe1_base;
    uint8_t cst_cnt;
    uint16_t p_lvl2_lat;
    uint16_t p_lvl3_lat;
    uint16_t flush_size;
    uint16_t flush_stride;
    uint8_t duty_offset;
    uint8_t duty_width;
    uint8_t day_alrm;
    uint8_t mon_alrm;
    uint8_t century;
    uint16_t iapc_boot_arch;
    uint8_t reserved1;
    uint32_t flags;
    GenericAddress reset_reg;
    uint8_t reset_value;
    uint16_t arm_boot_arch;
    uint8_t minor_version;
    uint64_t x_firmware_ctrl;
    uint64_t x_dsdt;
    GenericAddress x_pm1a_evt_blk;
    GenericAddress x_pm1b_evt_blk;
    GenericAddress x_pm1a_cnt_blk;
    GenericAddress x_pm1b_cnt_blk;
    GenericAddress x_pm2_cnt_blk;
    GenericAddress x_pm_tmr_blk;
    GenericAddress x_gpe0_blk;
    GenericAddress x_gpe1_blk;
    GenericAddress sleep_control_reg;
    GenericAddress sleep_status_reg;
    char hypervisor_vendor_id[8];
};
struct MadtHeader {
    SdtHeader header;
    uint32_t lapic_addr;
    uint32_t flags;
};
struct MadtLocalApic {
    uint8_t type;
    uint8_t length;
    uint8_t processor_uid;
    uint8_t apic_id;
    uint32_t flags;
};
struct MadtIoApic {
    uint8_t type;
    uint8_t length;
    uint8_t id;
    uint8_t reserved;
    uint32_t address;
    uint32_t gsi_base;
};
struct MadtLocalApicNmi {
    uint8_t type;
    uint8_t length;
    uint8_t processor_uid;
    uint16_t flags;
    uint8_t lint;
};
#pragma pack(pop)
static_assert(sizeof(SdtHeader) == 36);
static_assert(sizeof(Rsdp) == 36);
static_assert(sizeof(Fadt) == 276);
static_assert(sizeof(MadtLocalApic) == 8 && sizeof(MadtIoApic) == 12);
static_assert(sizeof(MadtLocalApicNmi) == 6);

// FADT flags and IA-PC boot architecture flags (ACPI 6.5, tables 5.10 and 5.11).
constexpr uint32_t kFadtPowerButtonIsNotFixed = 1u << 4;
constexpr uint32_t kFadtSleepButtonIsNotFixed = 1u << 5;
constexpr uint32_t kFadtHardwareReduced = 1u << 20;
constexpr uint16_t kBootArch8042 = 1u << 1;
constexpr uint16_t kBootArchVgaNotPresent = 1u << 2;
constexpr uint16_t kBootArchMsiNotSupported = 1u << 3;
constexpr uint16_t kBootArchCmosRtcNotPresent = 1u << 5;
constexpr uint32_t kMadtPcAtCompatible = 1u << 0;  // the 8259 PICs are there too
constexpr uint32_t kMadtCpuEnabled = 1u << 0;
constexpr uint8_t kMadtLocalApicType = 0;
constexpr uint8_t kMadtIoApicType = 1;
constexpr uint8_t kMadtLocalApicNmiType = 4;
constexpr uint8_t kAllProcessors = 0xff;

// resize and memcpy: GCC 12 warns falsely (-Wstringop-overflow) about vector::insert here.
void append_bytes(Bytes& out, const void* bytes, size_t size) {
    const size_t at = out.size();
    out.resize(at + size);
    std::memcpy(out.data() + at, bytes, size);
}

template <typename T>
void append_obj(Bytes& out, const T& obj) {
    append_bytes(out, &obj, sizeof obj);
}

SdtHeader header(const char (&signature)[5], uint8_t revision, std::string_view table_id) {
    SdtHeader h{};
    std::memcpy(h.signature, signature, 4);
    h.revision = revision;
    std::memcpy(h.oem_id, kOemId, sizeof h.oem_id);
    std::memset(h.oem_table_id, ' ', sizeof h.oem_table_id);
    std::memcpy(h.oem_table_id, table_id.data(), std::min(table_id.size(), sizeof h.oem_table_id));
    std::memcpy(h.creator_id, kCreatorId, sizeof h.creator_id);
    h.creator_revision = kCreatorRevision;
    return h;
}

// Sets the header's length and checksum once the whole table is in `table`.
Bytes sealed(Bytes table) {
    const auto length = static_cast<uint32_t>(table.size());
    std::memcpy(table.data() + offsetof(SdtHeader, length), &length, sizeof length);
    table[offsetof(SdtHeader, checksum)] = 0;
    table[offsetof(SdtHeader, checksum)] = checksum(table);
    return table;
}

GenericAddress byte_register(const ByteRegister& r) {
    return GenericAddress{static_cast<uint8_t>(r.space), 8, 0, 1, r.address};
}

}  // namespace

uint8_t checksum(std::span<const uint8_t> bytes) {
    return static_cast<uint8_t>(-std::accumulate(bytes.begin(), bytes.end(), uint8_t{0}));
}

Bytes rsdp(uint64_t xsdt_addr) {
    Rsdp r{};
    std::memcpy(r.signature, "RSD PTR ", sizeof r.signature);
    std::memcpy(r.oem_id, kOemId, sizeof r.oem_id);
    r.revision = 2;
    r.length = sizeof r;
    r.xsdt_addr = xsdt_addr;
    Bytes out;
    append_obj(out, r);
    out[offsetof(Rsdp, checksum)] = checksum(std::span(out).first(20));
    out[offsetof(Rsdp, extended_checksum)] = checksum(out);
    return out;
}

Bytes xsdt(std::span<const uint64_t> table_addrs) {
    Bytes out;
    append_obj(out, header("XSDT", 1, "EMBRXSDT"));
    for (uint64_t addr : table_addrs) append_obj(out, addr);
    return sealed(std::move(out));
}

Bytes fadt(const FadtSpec& spec) {
    Fadt f{};
    f.header = header("FACP", 6, "EMBRFACP");
    f.dsdt = spec.dsdt_addr <= UINT32_MAX ? static_cast<uint32_t>(spec.dsdt_addr) : 0;
    f.x_dsdt = spec.dsdt_addr;
    f.flags = kFadtHardwareReduced | kFadtPowerButtonIsNotFixed | kFadtSleepButtonIsNotFixed;
    f.iapc_boot_arch = kBootArchVgaNotPresent | kBootArchMsiNotSupported |
                       kBootArchCmosRtcNotPresent | (spec.has_i8042 ? kBootArch8042 : 0);
    f.minor_version = 5;
    f.sleep_control_reg = byte_register(spec.sleep_control);
    f.sleep_status_reg = byte_register(spec.sleep_status);
    std::memcpy(f.hypervisor_vendor_id, "EMBERKVM", sizeof f.hypervisor_vendor_id);
    Bytes out;
    append_obj(out, f);
    return sealed(std::move(out));
}

Bytes madt(const MadtSpec& spec) {
    MadtHeader m{};
    m.header = header("APIC", 6, "EMBRAPIC");
    m.lapic_addr = spec.lapic_addr;
    m.flags = kMadtPcAtCompatible;
    Bytes out;
    append_obj(out, m);
    for (uint32_t cpu = 0; cpu < spec.cpu_count; ++cpu) {
        const auto id = static_cast<uint8_t>(cpu);
        append_obj(
            out, MadtLocalApic{kMadtLocalApicType, sizeof(MadtLocalApic), id, id, kMadtCpuEnabled});
    }
    append_obj(out, MadtIoApic{kMadtIoApicType, sizeof(MadtIoApic), spec.ioapic_id, 0,
                               spec.ioapic_addr, 0});
    // Polarity and trigger "conform to the bus": an NMI is edge-triggered, active high.
    append_obj(out, MadtLocalApicNmi{kMadtLocalApicNmiType, sizeof(MadtLocalApicNmi),
                                     kAllProcessors, 0, spec.nmi_lint});
    return sealed(std::move(out));
}

Bytes dsdt(const Bytes& definition_block) {
    Bytes out;
    // Revision 2: integers in the definition block are 64 bits wide.
    append_obj(out, header("DSDT", 2, "EMBRDSDT"));
    append_bytes(out, definition_block.data(), definition_block.size());
    return sealed(std::move(out));
}

}  // namespace ember::acpi
