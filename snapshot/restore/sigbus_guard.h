// A restored VM's memory is a MAP_PRIVATE mapping of the snapshot's memory file: if the file is cut
// short while the VM runs, or its file system cannot give a page (full, failing), ember's own
// access to that page (a device filling a guest buffer) raises SIGBUS. ember cannot go on, but it
// says why, naming the guest address and the memory file, and ends with status 1, as a vCPU's
// failed access does (vcpu_thread.h, lose_guest_memory).
//
// The handler is process-wide; it claims a SIGBUS only when the faulting address lies in a
// guarded range. Any other SIGBUS is a bug elsewhere: the default action is put back and the
// fault repeats, so the process dies of it as it would have (core dump included).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "core/memory/guest_memory.h"

namespace ember::snapshot {

class SigbusGuard {
  public:
    // Installs the handler (once per process) and guards `memory`'s regions until destruction;
    // `failure` says what failed ("the memory file /x could not serve the page: ..."), cut at
    // 512 bytes. One guard at a time: ember restores one VM per process.
    SigbusGuard(const GuestMemory& memory, std::string_view failure);
    ~SigbusGuard();
    SigbusGuard(const SigbusGuard&) = delete;
    SigbusGuard& operator=(const SigbusGuard&) = delete;

    // Whether the handler would claim a fault at `addr` (for tests).
    static bool guards(const void* addr);
};

}  // namespace ember::snapshot
