// Guest memory served by a page-fault handler (Firecracker's Uffd backend): ember maps it
// anonymously, registers it with a userfaultfd and hands that, with the regions, to the handler
// named in the load. ember keeps its own copy of the userfaultfd for the VM's life: were the last
// copy closed, the kernel would drop the registration and the guest would read zeros where its
// memory was. A handler that exits leaves faults nobody serves; a thread watches for that (through
// a pidfd of the handler) and ends ember with a message instead of a VM hung for ever.
#pragma once

#include <memory>
#include <string>
#include <thread>

#include "core/base/error.h"
#include "core/base/event_fd.h"
#include "core/base/unique_fd.h"
#include "core/memory/guest_memory.h"
#include "core/memory/userfault.h"
#include "core/seccomp/filters.h"

namespace ember::snapshot {

class UffdBacking {
  public:
    // Registers `memory` and sends the handshake to `socket_path` within a few seconds; the watch
    // thread installs `filter` (the VMM thread's), when given.
    static Result<std::unique_ptr<UffdBacking>> connect(const GuestMemory& memory,
                                                        const std::string& socket_path,
                                                        const seccomp::BpfProgram* filter);
    ~UffdBacking();
    UffdBacking(const UffdBacking&) = delete;
    UffdBacking& operator=(const UffdBacking&) = delete;

    class Key {
        friend class UffdBacking;
        Key() = default;
    };
    UffdBacking(Key, Userfault uffd, UniqueFd connection, UniqueFd handler, EventFd stop);

  private:
    void watch(const seccomp::BpfProgram* filter, pid_t handler_pid) const;

    Userfault uffd_;
    UniqueFd connection_;
    UniqueFd handler_;  // a pidfd, when the handler's pid is visible here
    EventFd stop_;
    std::thread watcher_;
};

}  // namespace ember::snapshot
