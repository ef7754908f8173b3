#include "vmm/machine/vcpu_thread.h"

#include <signal.h>

#include <cstring>
#include <optional>

#include "core/base/hex.h"
#include "core/base/log.h"
#include "core/kvm/kvm_abi.h"
#include "core/seccomp/install.h"

namespace ember {
namespace {

// The kvm_run of the vCPU running on this thread: the kick handler's only way to reach it.
thread_local kvm_run* t_kvm_run = nullptr;

int kick_signal() {
    return SIGRTMIN + 1;
}

void on_kick(int) {
    if (t_kvm_run != nullptr) t_kvm_run->immediate_exit = 1;
}

std::string format_cpu(const Result<kvm_regs>& regs, const Result<kvm_sregs>& sregs) {
    std::string out;
    if (regs) out += " at rip " + hex(regs->rip) + " rsp " + hex(regs->rsp);
    if (sregs)
        out += " cr0 " + hex(sregs->cr0) + " cr3 " + hex(sregs->cr3) + " cr4 " + hex(sregs->cr4) +
               " efer " + hex(sregs->efer);
    return out;
}

}  // namespace

void install_kick_handler() {
    struct sigaction sa{};
    sa.sa_handler = on_kick;
    sigemptyset(&sa.sa_mask);
    ::sigaction(kick_signal(), &sa, nullptr);
}

VcpuThread::~VcpuThread() {
    stop_and_join();
}

Result<void> VcpuThread::start() {
    try {
        thread_ = std::thread([this] { thread_main(); });
    } catch (const std::system_error& e) {
        return fail(std::string("cannot start a vCPU thread: ") + e.what());
    }
    handle_ = thread_.native_handle();
    return {};
}

void VcpuThread::kick() {
    if (thread_.joinable()) ::pthread_kill(handle_, kick_signal());
}

void VcpuThread::request_pause() {
    {
        std::lock_guard lock(mutex_);
        if (request_ == Request::Stop) return;
        request_ = Request::Pause;
    }
    kick();
}

void VcpuThread::wait_paused() {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] { return paused_ || ended_ || !thread_.joinable(); });
}

bool VcpuThread::wait_paused(std::chrono::steady_clock::time_point deadline) {
    std::unique_lock lock(mutex_);
    return cv_.wait_until(lock, deadline, [&] { return paused_ || ended_ || !thread_.joinable(); });
}

void VcpuThread::resume() {
    {
        std::lock_guard lock(mutex_);
        if (request_ != Request::Pause) return;
        request_ = Request::Run;
    }
    cv_.notify_all();
}

void VcpuThread::stop_and_join() {
    {
        std::lock_guard lock(mutex_);
        request_ = Request::Stop;
    }
    cv_.notify_all();
    kick();
    if (thread_.joinable()) thread_.join();
}

bool VcpuThread::complete_pending_io() {
    kvm_run* run = vcpu_.run_struct();
    run->immediate_exit = 1;
    bool go_on = true;
    for (;;) {
        int rc = vcpu_.run();
        // 0: completing the last exit took the instruction to another one (the next register of
        // a string copy from MMIO, the other half of a split access, the next batch of a rep
        // INS). KVM will complete that one with whatever the run struct then holds, so it is
        // served here like any other, and KVM_RUN entered again, until the instruction is done.
        if (rc == 0) {
            if (handle_exit() != ExitOutcome::Stopped && !sink_.exit_requested()) continue;
            go_on = false;
        } else if (rc != -EINTR && rc != -EAGAIN) {
            warnings_.warn([&] {
                return "vCPU " + std::to_string(vcpu_.id()) +
                       ": completing pending I/O: " + std::strerror(-rc);
            });
        }
        break;
    }
    run->immediate_exit = 0;
    return go_on;
}

void VcpuThread::thread_main() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, kick_signal());
    ::pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
    t_kvm_run = vcpu_.run_struct();
    // Firecracker's name: Kata's driver finds vCPU threads to pin by the prefix "fc_vcpu".
    const std::string name = "fc_vcpu " + std::to_string(vcpu_.id());
    ::pthread_setname_np(::pthread_self(), name.c_str());
    log::set_thread_name(name);
    bool running = true;
    if (filter_ != nullptr) {
        if (auto r = seccomp::install(*filter_, seccomp::ThreadKind::Vcpu); !r) {
            sink_.request_exit(ExitReason::Error,
                               "vCPU " + std::to_string(vcpu_.id()) + ": " + r.error().message);
            running = false;
        }
    }

    while (running) {
        {
            std::unique_lock lock(mutex_);
            if (request_ == Request::Stop) break;
            if (request_ == Request::Pause) {
                lock.unlock();
                if (!complete_pending_io()) break;
                lock.lock();
                paused_ = true;
                cv_.notify_all();
                cv_.wait(lock, [&] { return request_ != Request::Pause; });
                paused_ = false;
                continue;
            }
        }
        int rc = vcpu_.run();
        if (rc == -EINTR || rc == -EAGAIN) {
            vcpu_.run_struct()->immediate_exit = 0;
            counters_.kicks.fetch_add(1, std::memory_order_relaxed);
            continue;
        }
        if (rc == -EFAULT) {
            // Hardware KVM's answer to a guest page the host could not provide (a memory file on
            // a full or failing file system): where KVM says which, the exit names it.
            const kvm_run* run = vcpu_.run_struct();
            std::optional<uint64_t> gpa;
            if (run->exit_reason == kvm_abi::kExitMemoryFault) {
                kvm_abi::MemoryFault fault{};
                std::memcpy(&fault, run->padding, sizeof fault);
                gpa = fault.gpa;
            }
            lose_guest_memory(gpa, "KVM_RUN failed with EFAULT");
            break;
        }
        if (rc < 0) {
            sink_.request_exit(ExitReason::Error, "vCPU " + std::to_string(vcpu_.id()) +
                                                      ": KVM_RUN: " + std::strerror(-rc));
            break;
        }
        if (handle_exit() == ExitOutcome::Stopped || sink_.exit_requested()) break;
    }
    t_kvm_run = nullptr;
    std::lock_guard lock(mutex_);
    ended_ = true;
    cv_.notify_all();
}

VcpuThread::ExitOutcome VcpuThread::handle_exit() {
    kvm_run* run = vcpu_.run_struct();
    const std::string who = "vCPU " + std::to_string(vcpu_.id());
    switch (run->exit_reason) {
        case KVM_EXIT_IO: return handle_io();
        case KVM_EXIT_MMIO: return handle_mmio();
        case KVM_EXIT_INTR: return ExitOutcome::Interrupted;
        case KVM_EXIT_SHUTDOWN:
            sink_.request_exit(ExitReason::TripleFault,
                               who + " triple-faulted (KVM_EXIT_SHUTDOWN)" + shutdown_summary());
            return ExitOutcome::Stopped;
        case KVM_EXIT_HLT:
            sink_.request_exit(ExitReason::GuestHalted, who + " halted with interrupts disabled");
            return ExitOutcome::Stopped;
        case KVM_EXIT_SYSTEM_EVENT:
            if (run->system_event.type == KVM_SYSTEM_EVENT_CRASH) {
                sink_.request_exit(ExitReason::Error, who + " reported a guest crash");
            } else {
                sink_.request_exit(ExitReason::GuestReset,
                                   who + " requested a system reset or shutdown");
            }
            return ExitOutcome::Stopped;
        case KVM_EXIT_FAIL_ENTRY:
            sink_.request_exit(ExitReason::Error,
                               who + ": KVM_EXIT_FAIL_ENTRY, hardware reason " +
                                   hex(run->fail_entry.hardware_entry_failure_reason));
            return ExitOutcome::Stopped;
        case KVM_EXIT_INTERNAL_ERROR: return handle_internal_error();
        default: {
            uint64_t n = counters_.unknown_exits.fetch_add(1, std::memory_order_relaxed) + 1;
            warnings_.warn([&] {
                return who + ": unhandled KVM exit reason " + std::to_string(run->exit_reason) +
                       " (" + std::to_string(n) + " so far)";
            });
            return ExitOutcome::Handled;
        }
    }
}

VcpuThread::ExitOutcome VcpuThread::handle_io() {
    kvm_run* run = vcpu_.run_struct();
    const auto& io = run->io;
    (io.direction == KVM_EXIT_IO_IN ? counters_.io_in_exits : counters_.io_out_exits)
        .fetch_add(1, std::memory_order_relaxed);
    const uint64_t bytes = uint64_t{io.size} * io.count;
    if (io.size == 0 || io.size > 8 || io.data_offset > vcpu_.run_size() ||
        bytes > vcpu_.run_size() - io.data_offset) {
        sink_.request_exit(ExitReason::Error,
                           "vCPU " + std::to_string(vcpu_.id()) + ": malformed PIO exit");
        return ExitOutcome::Stopped;
    }
    uint8_t* data = reinterpret_cast<uint8_t*>(run) + io.data_offset;
    for (uint32_t i = 0; i < io.count; ++i, data += io.size) {
        std::span<uint8_t> span(data, io.size);
        if (io.direction == KVM_EXIT_IO_IN) {
            // An absent device reads as a floating bus: all ones.
            if (!pio_.read(io.port, span)) {
                std::memset(data, 0xff, io.size);
                counters_.unhandled_pio.fetch_add(1, std::memory_order_relaxed);
            }
        } else if (!pio_.write(io.port, span)) {
            counters_.unhandled_pio.fetch_add(1, std::memory_order_relaxed);
        }
    }
    return ExitOutcome::Handled;
}

VcpuThread::ExitOutcome VcpuThread::handle_mmio() {
    kvm_run* run = vcpu_.run_struct();
    auto& mmio = run->mmio;
    (mmio.is_write ? counters_.mmio_write_exits : counters_.mmio_read_exits)
        .fetch_add(1, std::memory_order_relaxed);
    if (mmio.len == 0 || mmio.len > sizeof mmio.data) {
        sink_.request_exit(ExitReason::Error,
                           "vCPU " + std::to_string(vcpu_.id()) + ": malformed MMIO exit");
        return ExitOutcome::Stopped;
    }
    if (sink_.is_guest_ram(mmio.phys_addr))
        return lose_guest_memory(mmio.phys_addr, "KVM reported an access to it as MMIO");
    std::span<uint8_t> span(mmio.data, mmio.len);
    if (mmio.is_write) {
        if (!mmio_.write(mmio.phys_addr, span))
            counters_.unhandled_mmio.fetch_add(1, std::memory_order_relaxed);
    } else if (!mmio_.read(mmio.phys_addr, span)) {
        std::memset(mmio.data, 0, mmio.len);
        counters_.unhandled_mmio.fetch_add(1, std::memory_order_relaxed);
    }
    return ExitOutcome::Handled;
}

// Never answered as unassigned MMIO (reads of 0, writes dropped): the guest would go on with its
// memory silently wrong. As for a memory file cut short (snapshot/restore/sigbus_guard.h), the VM
// ends at once.
VcpuThread::ExitOutcome VcpuThread::lose_guest_memory(std::optional<uint64_t> gpa,
                                                      std::string_view how) {
    sink_.request_exit(ExitReason::Error, "vCPU " + std::to_string(vcpu_.id()) + ": guest memory" +
                                              (gpa ? " at " + hex(*gpa) : "") +
                                              " could not be provided (" + std::string(how) +
                                              "): " + sink_.guest_memory_failure());
    return ExitOutcome::Stopped;
}

std::string VcpuThread::cpu_summary() const {
    return format_cpu(vcpu_.get_regs(), vcpu_.get_sregs());
}

// KVM on AMD cannot trust the VMCB after a shutdown intercept, so it INITs the vCPU before it
// reports one: the registers are then the reset vector's, and printing them would point at code
// the guest never ran. Intel's KVM keeps the state the guest faulted in.
std::string VcpuThread::shutdown_summary() const {
    auto regs = vcpu_.get_regs();
    auto sregs = vcpu_.get_sregs();
    if (regs && sregs && regs->rip == 0xfff0 && sregs->cs.base == 0xffff0000)
        return "; where is not known: KVM had already reset the vCPU, as it does on AMD";
    return format_cpu(regs, sregs);
}

VcpuThread::ExitOutcome VcpuThread::handle_internal_error() {
    if (try_emulation_fallback()) return ExitOutcome::Handled;
    const auto& internal = vcpu_.run_struct()->internal;
    std::string detail = "vCPU " + std::to_string(vcpu_.id()) + ": KVM internal error, suberror " +
                         std::to_string(internal.suberror) + cpu_summary();
    sink_.request_exit(ExitReason::Error, detail);
    return ExitOutcome::Stopped;
}

// A host whose KVM emulates guest ring 0 in software cannot emulate a few instructions there and
// exits with an emulation failure naming the instruction's bytes. For those we know, ember does
// what the CPU would have done and lets the guest go on; hardware KVM never exits so:
//   INT3 (0xCC; Linux's alternatives self-test runs one): step past it and raise #BP.
//   FWAIT (0x9B; Linux's FPU code): a no-op unless an unmasked x87 exception is pending (FSW.ES),
//   in which case it raises #MF at the instruction.
bool VcpuThread::try_emulation_fallback() {
    const auto& failure = vcpu_.run_struct()->emulation_failure;
    if (failure.suberror != KVM_INTERNAL_ERROR_EMULATION || failure.ndata < 2 ||
        !(failure.flags & KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES) ||
        failure.insn_size < 1)
        return false;
    const uint8_t opcode = failure.insn_bytes[0];
    if (opcode != 0xcc && opcode != 0x9b) return false;
    auto regs = vcpu_.get_regs();
    auto events = vcpu_.get_vcpu_events();
    if (!regs || !events) return false;
    std::optional<uint8_t> exception;
    if (opcode == 0xcc) {
        regs->rip += 1;
        exception = 3;  // #BP is a trap: reported after the instruction
    } else {
        auto fpu = vcpu_.get_fpu();
        if (!fpu) return false;
        constexpr uint16_t kFswErrorSummary = 0x80;
        if (fpu->fsw & kFswErrorSummary)
            exception = 16;  // #MF is a fault: RIP stays
        else
            regs->rip += 1;
    }
    if (!vcpu_.set_regs(*regs)) return false;
    if (exception) {
        events->exception.injected = 1;
        events->exception.nr = *exception;
        events->exception.has_error_code = 0;
        events->exception.error_code = 0;
        if (!vcpu_.set_vcpu_events(*events)) return false;
    }
    uint64_t n = counters_.emulation_fallbacks.fetch_add(1, std::memory_order_relaxed) + 1;
    // One line per instruction kind is enough to explain what happened.
    auto& logged = opcode == 0xcc ? logged_int3_ : logged_fwait_;
    if (!logged) {
        logged = true;
        log::info("vCPU " + std::to_string(vcpu_.id()) +
                  ": the host's KVM could not emulate a guest " +
                  (opcode == 0xcc ? "INT3" : "FWAIT") +
                  " (software-emulated ring 0); ember completed it as the CPU would (" +
                  std::to_string(n) + " such fallbacks so far)");
    }
    return true;
}

}  // namespace ember
