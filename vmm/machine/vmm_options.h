// How a Vmm is run: what its owner decides rather than the VM's configuration (where the console
// goes, the event loop it shares, the host's quirks, the seccomp filters its threads install).
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string>

#include "core/kvm/host_quirks.h"
#include "core/seccomp/filters.h"
#include "vmm/machine/virtio_kinds.h"

namespace ember {

class EventLoop;
class PhaseTimes;
class PublishedVm;

struct VmmOptions {
    bool boot_timer = false;
    // Where the guest's serial output goes (not owned). Should be non-blocking if it can block.
    int serial_out_fd = 1;
    // Host input for the guest's serial port, or -1 (not owned).
    int serial_in_fd = -1;
    // The VMM thread's event loop, when someone else (the Controller) owns it; else the Vmm
    // makes its own.
    EventLoop* loop = nullptr;
    std::chrono::steady_clock::time_point start_time = std::chrono::steady_clock::now();
    uint64_t start_cpu_us = 0;
    HostQuirks quirks;
    std::string kvm_path = "/dev/kvm";
    // Installed by each vCPU thread before its first KVM_RUN; null: none (not owned).
    const seccomp::BpfProgram* vcpu_filter = nullptr;
    // The VMM thread's, installed by the threads that do its work beside it (the page-fault
    // handler's watch); null: none (not owned).
    const seccomp::BpfProgram* vmm_filter = nullptr;
    // The virtio kinds this VM's configuration may have devices of, in slot order; a restore
    // must be given the kinds its snapshot was taken with.
    std::span<const virtio::VirtioKind* const> virtio_kinds = ember::virtio_kinds();
    // A restore with a working set maps its pages in KVM's stage-2 tables before the vCPUs run,
    // where KVM can (KVM_PRE_FAULT_MEMORY, Linux 6.10).
    bool pre_fault = true;
    // Where the Vmm publishes its configuration and state for other threads once it has started,
    // and after each change; null: nowhere (not owned).
    PublishedVm* published = nullptr;
    // Where the steps of its start or restore are marked as each ends; null: nowhere (not owned).
    PhaseTimes* phases = nullptr;
};

}  // namespace ember
