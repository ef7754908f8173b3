// A paused VM written as a snapshot: the mirror of read_snapshot() (decoded_snapshot.h). The Vmm
// captures its MachineState; this writes it and the guest's memory as a state file and a memory
// file, each beside its target, renamed over both as a pair only once both are complete: a
// failure leaves any earlier snapshot at these paths whole, and a process that maps an old memory
// file keeps its own inode either way.
#pragma once

#include <string>

#include "core/base/error.h"
#include "core/kvm/vm.h"
#include "core/memory/guest_memory.h"
#include "snapshot/machine_state.h"
#include "snapshot/restore/restored_memory.h"

namespace ember::snapshot {

struct SnapshotTargets {
    std::string state_path;
    std::string memory_path;
};

// Refuses targets that are one file, or the memory file `restored` (null for a booted VM) still
// maps: writing a new file under that name would be safe (rename), but the caller almost
// certainly meant another path, and taking it over would make this the only copy of the base.
Result<void> refuse_targets(const SnapshotTargets& to, const RestoredMemory* restored);

// Writes `machine` and `memory`: with `diff`, only the pages written since the last snapshot (KVM's
// dirty log of `vm` and the pages ember's devices wrote), into a sparse file; otherwise every
// non-zero page. Either way the dirty pages are taken, and put back if the snapshot fails, so that
// the next Diff carries them.
Result<void> write_snapshot(const MachineState& machine, const Vm& vm, const GuestMemory& memory,
                            bool diff, const SnapshotTargets& to);

}  // namespace ember::snapshot
