// A throwaway VM that measures what the host's KVM does with a guest: how fast guest ring 0 and
// ring 3 run, whether a ring-3 SYSCALL reaches ring 0 (what a real kernel's user space needs), and
// whether KVM's dirty log sees a guest write. The guest is a few instructions (probe_guest.cc),
// so the whole probe takes milliseconds on hardware KVM and at most about two seconds where ring 0
// is emulated in software.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/base/error.h"
#include "core/kvm/kvm.h"

namespace ember {

struct ProbeResult {
    // Guest instructions per second in a tight loop, in ring 0 and in ring 3. The ring-3 figure
    // is missing when the guest never got to ring 3.
    double ring0_per_second = 0;
    std::optional<double> ring3_per_second;
    bool dirty_log_saw_write = false;
    // Empty when SYSCALL from ring 3 arrived in ring 0 at the entry point; else what happened.
    std::string syscall_problem;
};

// Runs the probe on a fresh VM of `kvm`. Uses SIGALRM to bound each run: call it only while no
// other thread of the process runs.
Result<ProbeResult> run_probe_vm(const Kvm& kvm);

// Ring 0 counts as emulated in software when it runs at under a tenth of ring 3's speed; under
// hardware KVM (or any emulator running both alike) they are about equal.
bool ring0_is_emulated(const ProbeResult& result);

}  // namespace ember
