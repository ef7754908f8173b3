#include "api/json/api_bodies.h"

#include "api/json/config_codec.h"

namespace ember::json {
Result<MachineConfigPatch> parse_machine_config_patch(std::string_view text) {
    auto p = read_body<MachineConfigPatch>(text);
    EMBER_TRY(p);
    if (!p->vcpu_count && !p->mem_size_mib && !p->smt && !p->track_dirty_pages &&
        !p->cpu_template && !p->huge_pages)
        return fail("Empty PATCH request.");
    return p;
}

Result<DriveUpdate> parse_drive_patch(std::string_view text) {
    return read_body<DriveUpdate>(text);
}

Result<NetworkInterfaceUpdate> parse_network_interface_patch(std::string_view text) {
    return read_body<NetworkInterfaceUpdate>(text);
}

Result<PutAction> parse_action(std::string_view text) {
    return read_body<PutAction>(text);
}

Result<SetVmState> parse_vm_state(std::string_view text) {
    return read_body<SetVmState>(text);
}

Result<LoggerConfig> parse_logger(std::string_view text) {
    return read_body<LoggerConfig>(text);
}

Result<PutMetrics> parse_metrics(std::string_view text) {
    return read_body<PutMetrics>(text);
}

Result<CreateSnapshot> parse_snapshot_create(std::string_view text) {
    return read_body<CreateSnapshot>(text);
}

Result<LoadSnapshot> parse_snapshot_load(std::string_view text) {
    auto l = read_body<LoadSnapshot>(text);
    EMBER_TRY(l);
    if (l->mem_file_path && l->mem_backend)
        return fail("mem_file_path and mem_backend: give one, not both");
    if (l->mem_file_path)
        l->mem_backend = MemBackend{MemBackendType::File, *l->mem_file_path};
    else if (!l->mem_backend)
        return fail("mem_backend: missing field `mem_backend`");
    if (l->mem_backend->backend_path.empty()) return fail("mem_backend.backend_path: empty path");
    if (l->working_set_path && l->working_set_path->empty())
        return fail("working_set_path: empty path");
    l->track_dirty_pages = l->track_dirty_pages || l->enable_diff_snapshots.value_or(false);
    const auto& overrides = l->network_overrides;
    for (size_t i = 0; i < overrides.size(); ++i)
        for (size_t j = 0; j < i; ++j)
            if (overrides[j].iface_id == overrides[i].iface_id)
                return fail("network_overrides[" + std::to_string(i) + "].iface_id: '" +
                            overrides[i].iface_id + "' is overridden twice");
    return l;
}

Result<RecordWorkingSet> parse_working_set(std::string_view text) {
    auto w = read_body<RecordWorkingSet>(text);
    EMBER_TRY(w);
    if (w->working_set_path.empty()) return fail("working_set_path: empty path");
    return w;
}

}  // namespace ember::json
