// The bodies of the API's answers that are not configuration sections (GET / and GET /version),
// described field by field as the requests are (core/action_fields.h), so that the server writes
// them and a client reads them with the one description.
#pragma once

#include <string>
#include <string_view>

#include "core/action_fields.h"
#include "core/base/described.h"
#include "core/config/vm_state.h"

namespace ember {

// GET /: Firecracker's InstanceInfo.
struct InstanceInfo {
    std::string id;
    VmState state = VmState::NotStarted;
    std::string vmm_version;
    std::string app_name;
};

// GET /version.
struct VersionInfo {
    std::string firecracker_version;
};

constexpr std::string_view name_of(VmState s) {
    return state_name(s);
}

}  // namespace ember

namespace ember::config {

void describe(Is<InstanceInfo> auto& i, auto&& v) {
    v(Field{.name = "id", .required = true}, i.id);
    v(Field{.name = "state", .required = true}, i.state);
    v(Field{.name = "vmm_version", .required = true}, i.vmm_version);
    v(Field{.name = "app_name", .required = true}, i.app_name);
}

void describe(Is<VersionInfo> auto& i, auto&& v) {
    v(Field{.name = "firecracker_version", .required = true}, i.firecracker_version);
}

// By state_name(), the one spelling of each state.
inline Result<void> from_name(std::string_view name, const std::string& key, VmState& out) {
    for (VmState state : {VmState::NotStarted, VmState::Running, VmState::Paused, VmState::Exited})
        if (name == state_name(state)) {
            out = state;
            return {};
        }
    return fail(key + ": unknown VM state '" + std::string(name) + "'");
}

}  // namespace ember::config
