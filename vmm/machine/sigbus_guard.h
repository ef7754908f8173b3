// A restored VM's memory is a MAP_PRIVATE mapping of the snapshot's memory file: if someone
// truncates the file while the VM runs, touching a page past the new end raises SIGBUS. ember
// cannot go on, but it says why instead of dying silently. (KVM itself sees EFAULT and stops the
// vCPU with an error.)
//
// The handler is process-wide; it claims a SIGBUS only when the faulting address lies in a
// guarded range. Any other SIGBUS is a bug elsewhere: the default action is put back and the
// fault repeats, so the process dies of it as it would have (core dump included).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "core/memory/guest_memory.h"

namespace ember {

class SigbusGuard {
  public:
    // Installs the handler (once per process) and guards `memory`'s regions until destruction. One
    // guard at a time: ember restores one VM per process.
    explicit SigbusGuard(const GuestMemory& memory);
    ~SigbusGuard();
    SigbusGuard(const SigbusGuard&) = delete;
    SigbusGuard& operator=(const SigbusGuard&) = delete;

    // Whether the handler would claim a fault at `addr` (for tests).
    static bool guards(const void* addr);
};

}  // namespace ember
