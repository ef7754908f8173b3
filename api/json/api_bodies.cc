#include "api/json/api_bodies.h"

#include "core/config/config_fields.h"

namespace ember::json {

Result<void> settle(MachineConfigPatch& p) {
    if (!config::gives_any(p)) return fail("Empty PATCH request.");
    return {};
}

Result<void> settle(LoadSnapshot& l) {
    if (l.mem_file_path && l.mem_backend)
        return fail("mem_file_path and mem_backend: give one, not both");
    if (l.mem_file_path)
        l.mem_backend = MemBackend{MemBackendType::File, *l.mem_file_path};
    else if (!l.mem_backend)
        return fail("mem_backend: missing field `mem_backend`");
    if (l.mem_backend->backend_path.empty()) return fail("mem_backend.backend_path: empty path");
    if (l.working_set_path && l.working_set_path->empty())
        return fail("working_set_path: empty path");
    l.track_dirty_pages = l.track_dirty_pages || l.enable_diff_snapshots.value_or(false);
    const auto& overrides = l.network_overrides;
    for (size_t i = 0; i < overrides.size(); ++i)
        for (size_t j = 0; j < i; ++j)
            if (overrides[j].iface_id == overrides[i].iface_id)
                return fail("network_overrides[" + std::to_string(i) + "].iface_id: '" +
                            overrides[i].iface_id + "' is overridden twice");
    return {};
}

Result<void> settle(RecordWorkingSet& w) {
    if (w.working_set_path.empty()) return fail("working_set_path: empty path");
    return {};
}

}  // namespace ember::json
