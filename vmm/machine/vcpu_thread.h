// One thread per vCPU running KVM_RUN. PIO and MMIO exits are dispatched to the buses on this
// thread; everything else that ends the VM is reported to the VMM through ExitSink.
//
// Pause and kick: a dedicated real-time signal, sent with pthread_kill to one vCPU thread (which
// unblocks it), whose handler sets kvm_run.immediate_exit, so a kick can never be lost between
// checking for a request and entering KVM_RUN. A paused vCPU first re-enters KVM_RUN with
// immediate_exit set, which completes a PIO/MMIO read the guest is waiting on, so its registers are
// consistent before anyone reads them; any further exit the instruction needs is served on the way.
#pragma once

#include <pthread.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <thread>

#include "core/base/error.h"
#include "core/base/log_limit.h"
#include "core/devices/bus.h"
#include "core/kvm/vcpu.h"
#include "core/seccomp/filters.h"

namespace ember {

enum class ExitReason { GuestReset, GuestPowerOff, TripleFault, GuestHalted, Signal, Error };

class ExitSink {
  public:
    virtual ~ExitSink() = default;
    // Thread-safe; the first request wins.
    virtual void request_exit(ExitReason reason, std::string detail) = 0;
    // Whether the VM is ending: a vCPU does not enter the guest again once it is, so nothing runs
    // after a guest's own reset or power-off write.
    virtual bool exit_requested() const = 0;
    // Whether `gpa` is guest RAM: an MMIO exit there is never a device access, but a page the host
    // failed to provide (on a KVM that emulates guest ring 0, a fault on a memory file whose file
    // system is full comes back so).
    virtual bool is_guest_ram(uint64_t gpa) const = 0;
    // What failed when guest RAM could not be provided ("the memory file /x could not serve the
    // page: ..."), for the VM's exit message.
    virtual std::string guest_memory_failure() const = 0;
};

struct VcpuCounters {
    std::atomic<uint64_t> io_in_exits{0}, io_out_exits{0};
    std::atomic<uint64_t> mmio_read_exits{0}, mmio_write_exits{0};
    std::atomic<uint64_t> unhandled_pio{0};
    std::atomic<uint64_t> unhandled_mmio{0};
    std::atomic<uint64_t> unknown_exits{0};
    std::atomic<uint64_t> emulation_fallbacks{0};
    std::atomic<uint64_t> kicks{0};
};

// Installs the kick signal's handler; once per process, before any VcpuThread starts.
void install_kick_handler();

class VcpuThread {
  public:
    // `filter`, if any, is installed on the thread before its first KVM_RUN (not owned).
    VcpuThread(Vcpu vcpu, const Bus& pio, const Bus& mmio, ExitSink& sink,
               const seccomp::BpfProgram* filter = nullptr)
        : vcpu_(std::move(vcpu)), pio_(pio), mmio_(mmio), sink_(sink), filter_(filter) {}
    ~VcpuThread();
    VcpuThread(const VcpuThread&) = delete;
    VcpuThread& operator=(const VcpuThread&) = delete;

    // Fails when the system cannot create a thread (EAGAIN under a pids limit, for one).
    Result<void> start();
    // Asks the vCPU to stop at its next exit; returns at once.
    void request_pause();
    // Blocks until the vCPU acknowledged the pause (or has ended), or `deadline` passed: false
    // then. A vCPU that waits inside KVM_RUN (on guest memory the host has not provided yet) does
    // not see the request until KVM_RUN returns.
    bool wait_paused(std::chrono::steady_clock::time_point deadline);
    // The same without a bound: for vCPUs that start paused, before they run.
    void wait_paused();
    void resume();
    void stop_and_join();

    const Vcpu& vcpu() const { return vcpu_; }
    const VcpuCounters& counters() const { return counters_; }

  private:
    enum class Request { Run, Pause, Stop };
    // What serving one KVM exit leaves the vCPU to do (Firecracker's VcpuEmulation): run on, run
    // on after a signal cut KVM_RUN short, or stop, the VM's exit already requested.
    enum class ExitOutcome { Handled, Interrupted, Stopped };

    void thread_main();
    void kick();
    // False when serving an exit on the way ended the VM.
    bool complete_pending_io();
    ExitOutcome handle_exit();
    ExitOutcome handle_io();
    ExitOutcome handle_mmio();
    ExitOutcome handle_internal_error();
    // Ends the VM: guest RAM (at `gpa`, where known) could not be provided, as `how` showed.
    ExitOutcome lose_guest_memory(std::optional<uint64_t> gpa, std::string_view how);
    bool try_emulation_fallback();
    // " at rip ... cr0 ... efer ..." for messages about a vCPU that stopped unexpectedly.
    std::string cpu_summary() const;
    std::string shutdown_summary() const;

    Vcpu vcpu_;
    const Bus& pio_;
    const Bus& mmio_;
    ExitSink& sink_;
    const seccomp::BpfProgram* filter_;
    VcpuCounters counters_;

    std::thread thread_;
    pthread_t handle_{};
    std::mutex mutex_;
    std::condition_variable cv_;
    Request request_ = Request::Run;
    bool paused_ = false;
    log::LineLimit warnings_;   // lines the guest can cause as often as it likes
    bool logged_int3_ = false;  // this thread only
    bool logged_fwait_ = false;
    bool ended_ = false;
};

}  // namespace ember
