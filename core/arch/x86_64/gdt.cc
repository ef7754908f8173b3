#include "core/arch/x86_64/gdt.h"

#include "core/arch/x86_64/layout.h"

namespace ember::x86 {

kvm_segment segment_from_gdt_entry(uint64_t entry, uint8_t table_index) {
    kvm_segment seg{};
    seg.base = ((entry >> 16) & 0xffffff) | (((entry >> 56) & 0xff) << 24);
    uint32_t limit = static_cast<uint32_t>((entry & 0xffff) | (((entry >> 48) & 0xf) << 16));
    seg.g = (entry >> 55) & 1;
    // With 4 KiB granularity KVM wants the limit in bytes.
    seg.limit = seg.g ? (limit << 12) | 0xfff : limit;
    seg.selector = static_cast<uint16_t>(table_index * 8);
    seg.type = (entry >> 40) & 0xf;
    seg.present = (entry >> 47) & 1;
    seg.dpl = (entry >> 45) & 3;
    seg.db = (entry >> 54) & 1;
    seg.s = (entry >> 44) & 1;
    seg.l = (entry >> 53) & 1;
    seg.avl = (entry >> 52) & 1;
    seg.unusable = seg.present ? 0 : 1;
    return seg;
}

std::array<uint64_t, 4> boot_gdt(CpuMode mode) {
    uint16_t code_flags = mode == CpuMode::Long64 ? 0xa09b : 0xc09b;
    return {
        gdt_entry(0, 0, 0),
        gdt_entry(code_flags, 0, 0xfffff),
        gdt_entry(0xc093, 0, 0xfffff),
        gdt_entry(0x808b, 0, 0xfffff),
    };
}

Result<void> write_gdt(const GuestMemory& mem, const std::array<uint64_t, 4>& gdt) {
    EMBER_TRY(mem.write_obj(kGdtAddr, gdt));
    return mem.write_obj<uint64_t>(kIdtAddr, 0);
}

}  // namespace ember::x86
