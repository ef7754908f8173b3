// api/json: Firecracker's JSON bodies and config file into core/config structs. Parsing checks
// shape and types; the value rules live in core/config's validate(), shared by every path in.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "core/base/error.h"
#include "core/config/vm_config.h"

namespace ember::json {

// A file's bytes by its path, bounded as the caller bounds files it reads.
using ReadFile = std::function<Result<std::string>(const std::string& path)>;

// Firecracker's --config-file document: boot-source, machine-config, drives, network-interfaces,
// and cpu-config, a custom CPU template's file read through `read_file` (without one, refused).
Result<ValidVmConfig> parse_vm_config(std::string_view text, const ReadFile& read_file = nullptr);

}  // namespace ember::json
