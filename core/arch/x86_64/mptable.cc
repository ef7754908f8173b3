#include "core/arch/x86_64/mptable.h"

#include <cstring>
#include <numeric>
#include <vector>

#include "core/arch/x86_64/layout.h"

namespace ember::x86 {
namespace {

#pragma pack(push, 1)
struct MpFloatingPointer {
    char signature[4];
    uint32_t config_table_addr;
    uint8_t length_paragraphs;
    uint8_t spec_rev;
    uint8_t checksum;
    uint8_t features[5];
};
struct MpConfigHeader {
    char signature[4];
    uint16_t length;
    uint8_t spec_rev;
    uint8_t checksum;
    char oem_id[8];
    char product_id[12];
    uint32_t oem_table;
    uint16_t oem_table_size;
    uint16_t entry_count;
    uint32_t lapic_addr;
    uint16_t ext_length;
    uint8_t ext_checksum;
    uint8_t reserved;
};
struct MpProcessor {
    uint8_t type;
    uint8_t apic_id;
    uint8_t apic_version;
    uint8_t cpu_flags;
    uint32_t signature;
    uint32_t feature_flags;
    uint32_t reserved[2];
};
struct MpBus {
    uint8_t type;
    uint8_t bus_id;
    char bus_type[6];
};
struct MpIoApic {
    uint8_t type;
    uint8_t apic_id;
    uint8_t apic_version;
    uint8_t flags;
    uint32_t addr;
};
struct MpInterrupt {
    uint8_t type;
    uint8_t irq_type;
    uint16_t flags;
    uint8_t src_bus;
    uint8_t src_irq;
    uint8_t dst_apic;
    uint8_t dst_pin;
};
#pragma pack(pop)
static_assert(sizeof(MpFloatingPointer) == 16 && sizeof(MpConfigHeader) == 44);
static_assert(sizeof(MpProcessor) == 20 && sizeof(MpBus) == 8 && sizeof(MpIoApic) == 8 &&
              sizeof(MpInterrupt) == 8);

enum : uint8_t { kProcessor = 0, kBus = 1, kIoApic = 2, kIoInterrupt = 3, kLocalInterrupt = 4 };
enum : uint8_t { kIntTypeInt = 0, kIntTypeNmi = 1, kIntTypeExtInt = 3 };
constexpr uint16_t kActiveHighEdge = 0x5;
constexpr uint8_t kCpuEnabled = 1, kCpuBootstrap = 2;
constexpr uint8_t kLapicVersion = 0x14, kIoApicVersion = 0x11;
constexpr uint32_t kCpuSignature = 0x600;        // family 6
constexpr uint32_t kCpuFeatures = (1 << 9) | 1;  // APIC, FPU

template <typename T>
void append(std::vector<uint8_t>& out, const T& v) {
    auto p = reinterpret_cast<const uint8_t*>(&v);
    out.insert(out.end(), p, p + sizeof v);
}

uint8_t checksum(const uint8_t* data, size_t n) {
    return static_cast<uint8_t>(-std::accumulate(data, data + n, uint8_t{0}));
}

}  // namespace

Result<void> write_mptable(const GuestMemory& mem, uint32_t vcpu_count) {
    if (vcpu_count == 0 || vcpu_count > kMaxVcpus)
        return fail("MP table: vcpu_count " + std::to_string(vcpu_count) + " is out of range");
    const uint8_t ioapic_id = static_cast<uint8_t>(vcpu_count);

    std::vector<uint8_t> body;
    uint16_t entries = 0;
    for (uint32_t cpu = 0; cpu < vcpu_count; ++cpu, ++entries) {
        MpProcessor p{
            kProcessor,    static_cast<uint8_t>(cpu),
            kLapicVersion, static_cast<uint8_t>(kCpuEnabled | (cpu == 0 ? kCpuBootstrap : 0)),
            kCpuSignature, kCpuFeatures,
            {0, 0}};
        append(body, p);
    }
    append(body, MpBus{kBus, 0, {'I', 'S', 'A', ' ', ' ', ' '}}), ++entries;
    append(body,
           MpIoApic{kIoApic, ioapic_id, kIoApicVersion, 1, static_cast<uint32_t>(kIoapicAddr)}),
        ++entries;
    for (uint8_t gsi = 0; gsi <= kLastGsi; ++gsi, ++entries)
        append(body,
               MpInterrupt{kIoInterrupt, kIntTypeInt, kActiveHighEdge, 0, gsi, ioapic_id, gsi});
    append(body, MpInterrupt{kLocalInterrupt, kIntTypeExtInt, 0, 0, 0, 0, 0}), ++entries;
    append(body, MpInterrupt{kLocalInterrupt, kIntTypeNmi, 0, 0, 0, 0xff, 1}), ++entries;

    const uint64_t config_addr = kMptableAddr + sizeof(MpFloatingPointer);
    MpConfigHeader header{};
    std::memcpy(header.signature, "PCMP", 4);
    header.length = static_cast<uint16_t>(sizeof header + body.size());
    header.spec_rev = 4;
    std::memcpy(header.oem_id, "EMBER   ", 8);
    std::memcpy(header.product_id, "MICROVM     ", 12);
    header.entry_count = entries;
    header.lapic_addr = static_cast<uint32_t>(kLapicAddr);
    std::vector<uint8_t> table;
    append(table, header);
    table.insert(table.end(), body.begin(), body.end());
    table[offsetof(MpConfigHeader, checksum)] = checksum(table.data(), table.size());
    if (config_addr + table.size() > kEbdaEnd) return fail("MP table does not fit below 640 KiB");

    MpFloatingPointer fp{};
    std::memcpy(fp.signature, "_MP_", 4);
    fp.config_table_addr = static_cast<uint32_t>(config_addr);
    fp.length_paragraphs = 1;
    fp.spec_rev = 4;
    fp.checksum = checksum(reinterpret_cast<const uint8_t*>(&fp), sizeof fp);

    EMBER_TRY(mem.write_obj(kMptableAddr, fp));
    return mem.write(config_addr, table);
}

}  // namespace ember::x86
