#include "core/arch/x86_64/regs.h"

#include "core/arch/x86_64/gdt.h"
#include "core/arch/x86_64/layout.h"
#include "core/arch/x86_64/page_tables.h"

namespace ember::x86 {
namespace {

constexpr uint64_t kCr0Pe = 1ull << 0;
constexpr uint64_t kCr0Et = 1ull << 4;
constexpr uint64_t kCr0Pg = 1ull << 31;
constexpr uint64_t kCr4Pae = 1ull << 5;
constexpr uint64_t kEferLme = 1ull << 8;
constexpr uint64_t kEferLma = 1ull << 10;

CpuMode mode_for(BootProtocol protocol) {
    return protocol == BootProtocol::Pvh ? CpuMode::Protected32 : CpuMode::Long64;
}

}  // namespace

Result<void> write_cpu_boot_tables(const GuestMemory& mem, BootProtocol protocol) {
    EMBER_TRY(write_gdt(mem, boot_gdt(mode_for(protocol))));
    if (protocol == BootProtocol::Linux64) return write_identity_page_tables(mem);
    return {};
}

Result<void> setup_boot_vcpu_registers(const Vcpu& vcpu, BootProtocol protocol, uint64_t entry) {
    auto sregs = vcpu.get_sregs();
    EMBER_TRY(sregs);
    auto gdt = boot_gdt(mode_for(protocol));
    sregs->gdt.base = kGdtAddr;
    sregs->gdt.limit = sizeof(gdt) - 1;
    sregs->idt.base = kIdtAddr;
    sregs->idt.limit = sizeof(uint64_t) - 1;
    sregs->cs = segment_from_gdt_entry(gdt[kCodeIndex], kCodeIndex);
    kvm_segment data = segment_from_gdt_entry(gdt[kDataIndex], kDataIndex);
    sregs->ds = sregs->es = sregs->fs = sregs->gs = sregs->ss = data;
    sregs->tr = segment_from_gdt_entry(gdt[kTssIndex], kTssIndex);

    kvm_regs regs{};
    regs.rflags = 0x2;  // bit 1 is reserved and always set
    regs.rip = entry;
    if (protocol == BootProtocol::Linux64) {
        sregs->cr3 = kPml4Addr;
        sregs->cr4 |= kCr4Pae;
        sregs->cr0 |= kCr0Pe | kCr0Pg | kCr0Et;
        sregs->efer |= kEferLme | kEferLma;
        regs.rsp = regs.rbp = kBootStackPointer;
        regs.rsi = kZeroPageAddr;
    } else {
        sregs->cr0 = kCr0Pe | kCr0Et;
        sregs->cr4 = 0;
        sregs->efer = 0;
        regs.rbx = kPvhStartInfoAddr;
    }
    EMBER_TRY(vcpu.set_sregs(*sregs));
    return vcpu.set_regs(regs);
}

Result<void> setup_fpu(const Vcpu& vcpu) {
    kvm_fpu fpu{};
    fpu.fcw = 0x37f;
    fpu.mxcsr = 0x1f80;
    return vcpu.set_fpu(fpu);
}

}  // namespace ember::x86
