// Bodies of the API's requests that are not whole config sections: partial updates, actions,
// VM state, logger and metrics. Same rules as the config: unknown fields, wrong types, missing
// required fields and unsupported values each get an error naming the field.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/base/error.h"
#include "core/config/machine_config_patch.h"

namespace ember::json {

Result<MachineConfigPatch> parse_machine_config_patch(std::string_view text);

Result<DriveUpdate> parse_drive_patch(std::string_view text);
Result<NetworkInterfaceUpdate> parse_network_interface_patch(std::string_view text);

// "InstanceStart", "SendCtrlAltDel" or "FlushMetrics".
Result<std::string> parse_action_type(std::string_view text);
// true for "Paused", false for "Resumed".
Result<bool> parse_vm_state(std::string_view text);
Result<LoggerConfig> parse_logger(std::string_view text);
Result<std::string> parse_metrics_path(std::string_view text);

struct SnapshotCreate {
    std::string snapshot_type = "Full";
    std::string snapshot_path;
    std::string mem_file_path;
};
Result<SnapshotCreate> parse_snapshot_create(std::string_view text);

struct SnapshotLoad {
    std::string snapshot_path;
    std::string mem_file_path;  // from mem_backend (backend_type File) or the older mem_file_path
    std::string uffd_socket_path;  // from mem_backend (backend_type Uffd): the handler's socket
    bool resume_vm = false;
    bool track_dirty_pages = false;
    std::vector<std::pair<std::string, std::string>> network_overrides;  // iface_id, host_dev_name
    bool deprecated_fields = false;  // mem_file_path or enable_diff_snapshots was given
    std::string working_set_path;    // an ember extension; empty: none
};
Result<SnapshotLoad> parse_snapshot_load(std::string_view text);

// PUT /snapshot/working-set, an ember extension: {"working_set_path": P}.
Result<std::string> parse_working_set(std::string_view text);

}  // namespace ember::json
