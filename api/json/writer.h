// JSON out: the config sections as Firecracker's GET /vm/config and GET /machine-config show them.
#pragma once

#include <string>
#include <string_view>

#include "core/config/vm_config.h"

namespace ember::json {

std::string quote(std::string_view s);
std::string to_json(const MachineConfig& m);
std::string to_json(const VmConfig& c);

}  // namespace ember::json
