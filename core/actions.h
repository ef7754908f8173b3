// The vocabulary between the API and the VMM: one struct per action a request asks for, its
// outcome, and the ActionSink that runs them. The API sees nothing of the VMM but this file and
// the config types.
#pragma once

#include <expected>
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
struct PutDrive {
    DriveConfig config;
};
struct PatchDrive {
    DriveUpdate update;
};
struct PutNetworkInterface {
    NetworkInterfaceConfig config;
};
struct PatchNetworkInterface {
    NetworkInterfaceUpdate update;
};
struct InstanceStart {};
struct SendCtrlAltDel {};
struct FlushMetrics {};
struct SetVmState {
    bool paused;
};
struct PutLogger {
    LoggerConfig config;
};
struct PutMetrics {
    std::string metrics_path;
};
struct CreateSnapshot {
    bool diff;
    std::string snapshot_path;
    std::string mem_file_path;
};
struct LoadSnapshot {
    std::string snapshot_path;
    std::string mem_file_path;     // the File backend's memory file
    std::string uffd_socket_path;  // or the Uffd backend's page-fault handler
    bool resume_vm = false;
    std::vector<NetworkOverride> network_overrides;
    bool track_dirty_pages = false;
    std::string working_set_path;  // empty: none (an ember extension)
};
// An ember extension: the pages a restored VM touched since its load, written for later loads.
struct RecordWorkingSet {
    std::string working_set_path;
};

using Action = std::variant<PutBootSource, PutMachineConfig, PatchMachineConfig, PutDrive,
                            PatchDrive, PutNetworkInterface, PatchNetworkInterface, InstanceStart,
                            SendCtrlAltDel, FlushMetrics, SetVmState, PutLogger, PutMetrics,
                            CreateSnapshot, LoadSnapshot, RecordWorkingSet>;

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
