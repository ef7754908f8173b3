// A restore decided before anything of the VM is built: the state file read and decoded, its
// configuration as the load asks for it (other taps, dirty tracking) and checked against this
// host's KVM, the working set read and checked against the snapshot, and where guest memory comes
// from. The Vmm builds the VM on `snap.config` and mapped_fd(); RestoredMemory fills its memory.
#pragma once

#include <linux/kvm.h>

#include <optional>
#include <span>
#include <string>
#include <variant>

#include "core/actions.h"
#include "core/base/error.h"
#include "core/base/unique_fd.h"
#include "core/kvm/kvm.h"
#include "snapshot/decoded_snapshot.h"
#include "snapshot/working_set.h"

namespace ember::snapshot {

// Guest memory mapped MAP_PRIVATE from the memory file: its pages come on first touch (a working
// set's ahead of the vCPUs).
struct MappedFile {
    UniqueFd fd;
    std::string path;
};
// hugetlb memory cannot map the file: it is read whole into reserved huge pages.
struct HugePageCopy {
    UniqueFd fd;
    std::string path;
};
// Anonymous memory, every page of it from a page-fault handler (Firecracker's Uffd backend).
struct PageFaultHandler {
    std::string socket_path;
};
using MemorySource = std::variant<MappedFile, HugePageCopy, PageFaultHandler>;

struct RestorePlan {
    DecodedSnapshot snap;
    MemorySource memory;
    std::optional<WorkingSet> working_set;
    std::string working_set_path;  // for messages

    // The file guest memory maps, or -1 for anonymous memory.
    int mapped_fd() const;
};

// `kvm` and `supported_cpuid` are the host's the VM will be built on.
Result<RestorePlan> plan_restore(const LoadSnapshot& load, const Kvm& kvm,
                                 std::span<const kvm_cpuid_entry2> supported_cpuid);

}  // namespace ember::snapshot
