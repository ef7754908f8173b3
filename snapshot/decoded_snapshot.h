// A state file read and decoded whole before anything of the VM is built: its configuration, its
// memory's layout, the VM's and each vCPU's KVM state, checked against one another, and its device
// sections, which the devices take back by their tags (snapshot/devices.h). A restore builds the
// VM from this one value.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/base/error.h"
#include "core/config/vm_config.h"
#include "core/kvm/vcpu_state.h"
#include "snapshot/format.h"
#include "snapshot/machine_state.h"
#include "snapshot/working_set.h"

namespace ember::snapshot {

struct DecodedSnapshot {
    // The file's bytes, which `file`'s sections view: moving the vector keeps its buffer, so the
    // value may move as a whole, but `bytes` must never be changed or moved out alone.
    std::vector<uint8_t> bytes;
    Reader file;
    ValidVmConfig config;
    MemoryLayout layout;
    VmKvmState vm;
    std::vector<VcpuState> vcpus;
    SnapshotIdentity identity;  // what names it: its checksum and its memory's size
    // Written by a restore from a store: its load must give every interface a tap of this host.
    bool from_store = false;
};

// Reads the state file at `path` (bounded, as read_state_file) and decodes it; an error names the
// section at fault.
Result<DecodedSnapshot> read_snapshot(const std::string& path);
// The same of a state file's bytes already read.
Result<DecodedSnapshot> decode_snapshot(std::vector<uint8_t> bytes);

// The mark a restore from a store writes (state_sections::kFromStore) carries nothing: one with a
// payload is refused rather than read past.
Result<void> check_from_store_mark(std::span<const uint8_t> payload);

}  // namespace ember::snapshot
