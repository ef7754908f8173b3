#include "core/host_check/probe_vm.h"

#include <linux/kvm.h>
#include <sys/time.h>

#include <array>
#include <chrono>
#include <csignal>
#include <cstring>
#include <vector>

#include "core/arch/x86_64/gdt.h"
#include "core/base/hex.h"
#include "core/kvm/vm.h"
#include "core/memory/guest_memory.h"

// The probe guest, kept in ember's read-only data and copied to guest address 0x1000. RDX counts
// down rounds of two instructions, first in ring 0, then (from R12) in ring 3 after a SYSRET; the
// host reads what is left of it when it has to stop a slow loop. Ports 0x10 and 0x11 say "ring-0
// loop done" and "SYSCALL arrived".
asm(R"(
    .pushsection .rodata.ember_probe_guest, "a"
    .globl ember_probe_guest_start, ember_probe_guest_after_syscall
    .globl ember_probe_guest_syscall_entry, ember_probe_guest_end
ember_probe_guest_start:
1:  dec %rdx
    jnz 1b
    movl $0x600d, 0x6000
    out %al, $0x10
    mov %r12, %rdx
    lea 2f(%rip), %rcx
    mov $0x2, %r11d
    sysretq
2:  dec %rdx
    jnz 2b
    syscall
ember_probe_guest_after_syscall:
    ud2
ember_probe_guest_syscall_entry:
    out %al, $0x11
    hlt
ember_probe_guest_end:
    .popsection
)");

extern "C" const uint8_t ember_probe_guest_start[], ember_probe_guest_after_syscall[],
    ember_probe_guest_syscall_entry[], ember_probe_guest_end[];

namespace ember {
namespace {

constexpr uint64_t kMemSize = 2 << 20;
constexpr uint64_t kCodeAddr = 0x1000;
constexpr uint64_t kPml4Addr = 0x2000, kPdptAddr = 0x3000, kPdAddr = 0x4000;
constexpr uint64_t kGdtAddr = 0x5000;
constexpr uint64_t kWrittenPage = 0x6000 / 4096;
constexpr uint64_t kTssAddr = 0xfffbd000;
constexpr uint16_t kDoneRing0Port = 0x10, kSyscallArrivedPort = 0x11;
// 20 million instructions per loop: a few milliseconds on hardware, ~14 s where ring 0 is
// emulated, which is why every run is cut off after kRunLimit and the rate read from RDX.
constexpr uint64_t kRounds = 10'000'000;
constexpr auto kRunLimit = std::chrono::seconds(1);

constexpr uint32_t kMsrStar = 0xc0000081, kMsrLstar = 0xc0000082, kMsrSfmask = 0xc0000084;
constexpr uint8_t kKernelCode = 1, kKernelData = 2, kUserBase = 3, kTss = 6;

uint64_t guest_addr_of(const uint8_t* symbol) {
    return kCodeAddr + static_cast<uint64_t>(symbol - ember_probe_guest_start);
}

Result<void> write_guest(const GuestMemory& mem) {
    std::span code(ember_probe_guest_start, ember_probe_guest_end);
    EMBER_TRY(mem.write(kCodeAddr, code));
    // One 2 MiB page, user-accessible, so the ring-3 loop runs from the same code.
    constexpr uint64_t kPresentWritableUser = 0x7, kLargePage = 0x80;
    EMBER_TRY(mem.write_obj(kPml4Addr, kPdptAddr | kPresentWritableUser));
    EMBER_TRY(mem.write_obj(kPdptAddr, kPdAddr | kPresentWritableUser));
    EMBER_TRY(mem.write_obj<uint64_t>(kPdAddr, kPresentWritableUser | kLargePage));
    // SYSRET takes its ring-3 selectors from STAR[63:48]: data at +8, 64-bit code at +16.
    const std::array<uint64_t, 7> gdt = {
        0,
        x86::gdt_entry(0xa09b, 0, 0xfffff),  // ring-0 64-bit code
        x86::gdt_entry(0xc093, 0, 0xfffff),  // ring-0 data
        x86::gdt_entry(0xc0fb, 0, 0xfffff),  // ring-3 32-bit code (unused, SYSRET's base)
        x86::gdt_entry(0xc0f3, 0, 0xfffff),  // ring-3 data
        x86::gdt_entry(0xa0fb, 0, 0xfffff),  // ring-3 64-bit code
        x86::gdt_entry(0x808b, 0, 0xfffff),  // TSS
    };
    return mem.write_obj(kGdtAddr, gdt);
}

Result<void> setup_vcpu(const Kvm& kvm, const Vcpu& vcpu) {
    auto cpuid = kvm.supported_cpuid();
    EMBER_TRY(cpuid);
    EMBER_TRY(vcpu.set_cpuid(*cpuid));
    const kvm_msr_entry msrs[] = {
        {kMsrStar, 0, (uint64_t{kUserBase * 8} << 48) | (uint64_t{kKernelCode * 8} << 32)},
        {kMsrLstar, 0, guest_addr_of(ember_probe_guest_syscall_entry)},
        {kMsrSfmask, 0, 0},
    };
    EMBER_TRY(vcpu.set_msrs(msrs));

    auto sregs = vcpu.get_sregs();
    EMBER_TRY(sregs);
    sregs->gdt.base = kGdtAddr;
    sregs->gdt.limit = 7 * 8 - 1;
    sregs->cs = x86::segment_from_gdt_entry(x86::gdt_entry(0xa09b, 0, 0xfffff), kKernelCode);
    sregs->ds = sregs->es = sregs->fs = sregs->gs = sregs->ss =
        x86::segment_from_gdt_entry(x86::gdt_entry(0xc093, 0, 0xfffff), kKernelData);
    sregs->tr = x86::segment_from_gdt_entry(x86::gdt_entry(0x808b, 0, 0xfffff), kTss);
    sregs->cr3 = kPml4Addr;
    sregs->cr4 = 1u << 5;                              // PAE
    sregs->cr0 = (1u << 0) | (1u << 4) | (1u << 31);   // PE, ET, PG
    sregs->efer = (1u << 0) | (1u << 8) | (1u << 10);  // SCE, LME, LMA
    EMBER_TRY(vcpu.set_sregs(*sregs));

    kvm_regs regs{};
    regs.rflags = 0x2;
    regs.rip = kCodeAddr;
    regs.rdx = kRounds;
    regs.r12 = kRounds;
    return vcpu.set_regs(regs);
}

extern "C" void on_probe_alarm(int) {}

// One KVM_RUN, cut off by SIGALRM after kRunLimit.
struct RunOutcome {
    bool cut_off = false;
    double seconds = 0;
};

Result<RunOutcome> run_bounded(const Vcpu& vcpu) {
    itimerval limit{};
    limit.it_value.tv_sec = std::chrono::duration_cast<std::chrono::seconds>(kRunLimit).count();
    auto start = std::chrono::steady_clock::now();
    ::setitimer(ITIMER_REAL, &limit, nullptr);
    int r = vcpu.run();
    auto elapsed = std::chrono::steady_clock::now() - start;
    itimerval off{};
    ::setitimer(ITIMER_REAL, &off, nullptr);
    if (r < 0 && r != -EINTR) return fail_errno("KVM_RUN", -r);
    return RunOutcome{r == -EINTR, std::chrono::duration<double>(elapsed).count()};
}

// Runs until the guest leaves a loop counted in RDX and stops: a loop cut off by the time limit is
// measured from what RDX has left, then finished early by setting RDX to 1. Returns instructions
// per second, or nullopt when the guest stopped without finishing the loop.
Result<std::optional<double>> run_loop(const Vcpu& vcpu) {
    auto first = run_bounded(vcpu);
    EMBER_TRY(first);
    auto regs = vcpu.get_regs();
    EMBER_TRY(regs);
    const double rounds = static_cast<double>(kRounds - regs->rdx);
    if (first->cut_off) {
        regs->rdx = 1;
        EMBER_TRY(vcpu.set_regs(*regs));
        auto rest = run_bounded(vcpu);
        EMBER_TRY(rest);
        if (rest->cut_off) return fail("the probe guest did not leave its loop");
        regs = vcpu.get_regs();
        EMBER_TRY(regs);
    }
    if (regs->rdx != 0) return std::nullopt;
    return 2.0 * rounds / first->seconds;
}

bool stopped_at_port(const kvm_run& run, uint16_t port) {
    return run.exit_reason == KVM_EXIT_IO && run.io.direction == KVM_EXIT_IO_OUT &&
           run.io.port == port;
}

std::string describe_stop(const Vcpu& vcpu) {
    const kvm_run& run = *vcpu.run_struct();
    std::string what;
    switch (run.exit_reason) {
        case KVM_EXIT_SHUTDOWN: what = "the guest triple-faulted"; break;
        case KVM_EXIT_INTERNAL_ERROR:
            what = "KVM failed (internal error " + std::to_string(run.internal.suberror) + ")";
            break;
        case KVM_EXIT_FAIL_ENTRY: what = "KVM could not enter the guest"; break;
        case KVM_EXIT_IO: what = "the guest wrote port " + hex(run.io.port); break;
        default: what = "KVM exit " + std::to_string(run.exit_reason); break;
    }
    auto regs = vcpu.get_regs();
    auto sregs = vcpu.get_sregs();
    if (regs && sregs)
        what += " at rip " + hex(regs->rip) + " in ring " + std::to_string(sregs->cs.selector & 3);
    return what;
}

}  // namespace

Result<ProbeResult> run_probe_vm(const Kvm& kvm) {
    const MemoryRegionSpec spec{0, kMemSize};
    auto mem = GuestMemory::create_anonymous(std::span(&spec, 1));
    EMBER_TRY(mem);
    auto vm = kvm.create_vm();
    EMBER_TRY(vm);
    EMBER_TRY(vm->set_user_memory_region(0, 0, kMemSize, mem->regions()[0].mapping.data(),
                                         KVM_MEM_LOG_DIRTY_PAGES));
    EMBER_TRY(vm->set_tss_address(kTssAddr));
    EMBER_TRY(write_guest(*mem));
    auto vcpu = vm->create_vcpu(0);
    EMBER_TRY(vcpu);
    EMBER_TRY(setup_vcpu(kvm, *vcpu), "probe vCPU");

    struct sigaction alarm{}, previous{};
    alarm.sa_handler = on_probe_alarm;  // no SA_RESTART: the alarm must end KVM_RUN with EINTR
    ::sigaction(SIGALRM, &alarm, &previous);
    struct RestoreAlarm {
        struct sigaction previous;
        ~RestoreAlarm() { ::sigaction(SIGALRM, &previous, nullptr); }
    } restore{previous};

    ProbeResult result;
    auto ring0 = run_loop(*vcpu);
    EMBER_TRY(ring0, "ring-0 loop");
    if (!*ring0 || !stopped_at_port(*vcpu->run_struct(), kDoneRing0Port))
        return fail("the probe guest stopped in ring 0: " + describe_stop(*vcpu));
    result.ring0_per_second = **ring0;
    // The dirty log holds the pages written since the slot was registered: the guest's one write
    // must be among them.
    auto dirty = vm->get_dirty_log(0, kMemSize / 4096);
    EMBER_TRY(dirty);
    result.dirty_log_saw_write = ((*dirty)[kWrittenPage / 64] >> (kWrittenPage % 64)) & 1;

    auto ring3 = run_loop(*vcpu);
    EMBER_TRY(ring3, "ring-3 loop");
    result.ring3_per_second = *ring3;
    auto regs = vcpu->get_regs();
    auto sregs = vcpu->get_sregs();
    if (!regs || !sregs) return fail("cannot read the probe vCPU's registers");
    const bool arrived = stopped_at_port(*vcpu->run_struct(), kSyscallArrivedPort) &&
                         (sregs->cs.selector & 3) == 0 && sregs->cs.dpl == 0 &&
                         regs->rcx == guest_addr_of(ember_probe_guest_after_syscall);
    if (!arrived) result.syscall_problem = describe_stop(*vcpu);
    return result;
}

bool ring0_is_emulated(const ProbeResult& result) {
    return result.ring3_per_second && result.ring0_per_second < *result.ring3_per_second / 10;
}

}  // namespace ember
