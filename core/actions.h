// The vocabulary between the API and the VMM: one struct per action a request asks for, its
// outcome, and the ActionSink that runs them. The API sees nothing of the VMM but this file and
// the config types.
#pragma once

#include <any>
#include <expected>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "core/base/error.h"
#include "core/config/machine_config_patch.h"
#include "core/config/vm_config.h"
#include "core/config/vm_state.h"

namespace ember {

struct PutBootSource {
    BootSourceConfig config;
};
struct PutMachineConfig {
    MachineConfig config;
};
struct PatchMachineConfig {
    MachineConfigPatch patch;
};
struct PutCpuConfig {
    CpuTemplate config;
};
struct PutDrive {
    DriveConfig config;
};
struct PutNetworkInterface {
    NetworkInterfaceConfig config;
};
// PATCH of a running device (PATCH /drives/{id}, PATCH /network-interfaces/{id}), addressed by
// its kind (as VirtioDevice::kind() says it: "block", "net") and id. `change` holds the kind's own
// update (DriveUpdate, NetworkInterfaceUpdate), which only devices of that kind read: a kind that
// takes updates adds nothing here.
struct UpdateDevice {
    std::string kind;
    std::string id;
    std::any change;
};
struct InstanceStart {};
struct SendCtrlAltDel {};
struct FlushMetrics {};
// PUT /actions names one of the three above.
enum class ActionType { InstanceStart, SendCtrlAltDel, FlushMetrics };
struct PutAction {
    ActionType action_type = ActionType::InstanceStart;
};
// PATCH /vm.
enum class VmStateChange { Paused, Resumed };
struct SetVmState {
    VmStateChange state = VmStateChange::Resumed;
    bool paused() const { return state == VmStateChange::Paused; }
};
struct PutLogger {
    LoggerConfig config;
};
struct PutMetrics {
    std::string metrics_path;
};
enum class SnapshotType { Full, Diff };
struct CreateSnapshot {
    SnapshotType snapshot_type = SnapshotType::Full;
    std::string snapshot_path;
    std::string mem_file_path;
    std::optional<std::string> version;  // Firecracker's, taken and not used
    bool diff() const { return snapshot_type == SnapshotType::Diff; }
};
// Where a restored VM's memory comes from: the memory file, or a page-fault handler's socket.
enum class MemBackendType { File, Uffd };
struct MemBackend {
    MemBackendType backend_type = MemBackendType::File;
    std::string backend_path;
};
struct LoadSnapshot {
    std::string snapshot_path;
    // Set once the body is read (api/json/api_bodies.h), from mem_backend or the deprecated
    // mem_file_path.
    std::optional<MemBackend> mem_backend;
    std::optional<std::string> mem_file_path;  // deprecated: a File backend
    bool resume_vm = false;
    std::optional<bool> enable_diff_snapshots;  // deprecated: track_dirty_pages
    bool track_dirty_pages = false;
    std::vector<NetworkOverride> network_overrides;
    std::optional<std::string> working_set_path;  // an ember extension

    const MemBackend& memory() const { return *mem_backend; }
    bool uffd() const { return memory().backend_type == MemBackendType::Uffd; }
    // The request used a field Firecracker deprecates: its answer says so.
    bool deprecated_fields() const {
        return mem_file_path.has_value() || enable_diff_snapshots.has_value();
    }
};
// An ember extension: the pages a restored VM touched since its load, written for later loads.
struct RecordWorkingSet {
    std::string working_set_path;
};

using Action =
    std::variant<PutBootSource, PutMachineConfig, PatchMachineConfig, PutCpuConfig, PutDrive,
                 PutNetworkInterface, UpdateDevice, InstanceStart, SendCtrlAltDel, FlushMetrics,
                 SetVmState, PutLogger, PutMetrics, CreateSnapshot, LoadSnapshot, RecordWorkingSet>;

// Success, or why not: the API answers 400 with the message as Firecracker's fault_message.
using Outcome = Result<void>;

// What the API may ask of the VMM (the Controller, in the ember binary).
class ActionSink {
  public:
    virtual ~ActionSink() = default;
    // Runs `action` on the VMM thread and returns how it went. Any thread.
    virtual Outcome submit(Action action) = 0;
    // Copies kept for readers: they never wait behind a running action. Any thread.
    virtual VmConfig config() const = 0;
    virtual VmState state() const = 0;
    virtual const std::string& instance_id() const = 0;
};

}  // namespace ember
