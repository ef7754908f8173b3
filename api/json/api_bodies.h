// Bodies of the API's requests that are not whole config sections: partial updates, actions, VM
// state, logger, metrics and snapshots. Each is read by walking its description
// (core/config/config_fields.h, core/action_fields.h) with the configuration's rules: unknown
// fields, wrong types, missing required fields and unsupported values each get an error naming
// the field. What one field cannot say alone (an empty PATCH, a backend given twice) is checked
// here after.
#pragma once

#include <string_view>

#include "core/actions.h"
#include "core/base/error.h"
#include "core/config/machine_config_patch.h"

namespace ember::json {

Result<MachineConfigPatch> parse_machine_config_patch(std::string_view text);
Result<DriveUpdate> parse_drive_patch(std::string_view text);
Result<NetworkInterfaceUpdate> parse_network_interface_patch(std::string_view text);

Result<PutAction> parse_action(std::string_view text);
Result<SetVmState> parse_vm_state(std::string_view text);
Result<LoggerConfig> parse_logger(std::string_view text);
Result<PutMetrics> parse_metrics(std::string_view text);
Result<CreateSnapshot> parse_snapshot_create(std::string_view text);
// Its mem_backend is set, from mem_backend or the deprecated mem_file_path, and its
// track_dirty_pages holds the deprecated enable_diff_snapshots too.
Result<LoadSnapshot> parse_snapshot_load(std::string_view text);
// PUT /snapshot/working-set, an ember extension: {"working_set_path": P}.
Result<RecordWorkingSet> parse_working_set(std::string_view text);

}  // namespace ember::json
