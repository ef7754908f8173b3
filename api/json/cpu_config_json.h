// api/json: the body of PUT /cpu-config (and a --config-file's cpu-config file), Firecracker's
// custom CPU template language, read into core/config/cpu_template.h's types.
#pragma once

#include <string>
#include <string_view>

#include "core/base/error.h"
#include "core/config/cpu_template.h"

namespace ember::json {

Result<CpuTemplate> parse_cpu_config(std::string_view text);

// The template as PUT /cpu-config takes it (each bitmap at its full width, x where it keeps):
// what ember's client sends; parse_cpu_config() reads it back the same.
std::string to_json(const CpuTemplate& t);

}  // namespace ember::json
