// The bodies of the API's requests (core/endpoints.h names each endpoint's type). Each is read by
// walking its description (core/config/config_fields.h, core/action_fields.h) with the
// configuration's rules: unknown fields, wrong types, missing required fields and unsupported
// values each get an error naming the field. What one field cannot say alone (an empty PATCH, a
// backend given twice) is settled after.
#pragma once

#include <string_view>

#include "api/json/config_codec.h"
#include "core/actions.h"
#include "core/base/error.h"
#include "core/config/machine_config_patch.h"

namespace ember::json {

// Nothing to settle but what its fields say.
template <typename T>
Result<void> settle(T&) {
    return {};
}
// An empty PATCH is refused.
Result<void> settle(MachineConfigPatch& p);
// Its mem_backend is set, from mem_backend or the deprecated mem_file_path, and its
// track_dirty_pages holds the deprecated enable_diff_snapshots too.
Result<void> settle(LoadSnapshot& l);
Result<void> settle(RecordWorkingSet& w);

template <typename T>
Result<T> parse_body(std::string_view text) {
    auto body = read_body<T>(text);
    EMBER_TRY(body);
    EMBER_TRY(settle(*body));
    return body;
}

}  // namespace ember::json
