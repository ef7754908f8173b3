// The memory a restored VM owns besides its mapping: the memory file (kept to read ahead what ember
// touches, and to notice if it is cut short under the VM), the SIGBUS guard over the mapping, the
// page-fault handler's connection, the working set and the snapshot it came from. One per restored
// Vmm, made once its guest memory is mapped and before any vCPU exists.
#pragma once

#include <sys/stat.h>

#include <chrono>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "core/base/error.h"
#include "core/base/unique_fd.h"
#include "core/kvm/kvm.h"
#include "core/kvm/vcpu.h"
#include "core/memory/guest_memory.h"
#include "core/seccomp/filters.h"
#include "snapshot/restore/plan.h"
#include "snapshot/working_set.h"

namespace ember::snapshot {

class SigbusGuard;
class UffdBacking;

class RestoredMemory {
  public:
    // Fills `memory`, built on plan.mapped_fd(), from the plan's source: the working set's pages
    // copied in, the file read into huge pages, or the memory handed to the page-fault handler,
    // whose watch thread installs `filter` (the VMM thread's) when given.
    static Result<std::unique_ptr<RestoredMemory>> fill(RestorePlan& plan,
                                                        const GuestMemory& memory,
                                                        const seccomp::BpfProgram* filter);
    ~RestoredMemory();
    RestoredMemory(const RestoredMemory&) = delete;
    RestoredMemory& operator=(const RestoredMemory&) = delete;

    // What a guest page the host could not give means, for the VM's exit.
    const std::string& failure() const { return failure_; }

    // Reads the memory file's pages behind `ranges` (guest-physical) into the page cache within
    // kMemoryFileBound: what ember itself touches as the VM starts. A file system that does not
    // answer fails the load, where touching those pages would block the VMM thread, and the API
    // with it, for as long as it stalls. Nothing to do for other sources.
    static constexpr std::chrono::milliseconds kMemoryFileBound{5000};
    Result<void> page_in(std::span<const GuestRange> ranges, const GuestMemory& memory);

    // With the vCPUs' state in place, so that KVM maps for the mode the guest runs in: the working
    // set's pages mapped in KVM's stage-2 tables (KVM_PRE_FAULT_MEMORY, Linux 6.10), where each
    // would otherwise cost the guest an exit. Only a speed-up: where KVM cannot, nothing changes.
    void pre_fault(const Kvm& kvm, const Vcpu& vcpu, const GuestMemory& memory) const;

    // Why the guest lost its memory while it ran (the memory file shrank under it), if it did.
    std::optional<std::string> lost_memory() const;

    // Whether `file` is the memory file this VM maps.
    bool maps(const struct stat& file) const;

    // The pages the VM touched since its load, as the snapshot holds them, written as a working
    // set at `path`.
    Result<WorkingSetCounts> record_working_set(const std::string& path,
                                                const GuestMemory& memory) const;

    class Key {
        friend class RestoredMemory;
        Key() = default;
    };
    RestoredMemory(Key, const RestorePlan& plan);

  private:
    SnapshotIdentity from_;
    uint64_t page_size_;
    std::string failure_ = "the host could not give it a page (is it out of memory?)";
    UniqueFd file_;  // a mapped memory file's
    std::string path_;
    std::unique_ptr<SigbusGuard> sigbus_guard_;
    std::unique_ptr<UffdBacking> uffd_;
    std::optional<WorkingSet> working_set_;
};

}  // namespace ember::snapshot
