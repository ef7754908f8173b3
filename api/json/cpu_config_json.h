// api/json: the body of PUT /cpu-config (and a --config-file's cpu-config file), Firecracker's
// custom CPU template language, read and written by its description (core/config/config_fields.h).
#pragma once

#include <string>
#include <string_view>

#include "api/json/config_codec.h"
#include "api/json/writer.h"
#include "core/base/error.h"
#include "core/config/cpu_template.h"

namespace ember::json {

inline Result<CpuTemplate> parse_cpu_config(std::string_view text) {
    return read_body<CpuTemplate>(text);
}

// The template as PUT /cpu-config takes it (each bitmap at its full width, x where it keeps):
// what ember's client sends; parse_cpu_config() reads it back the same. The aarch64 fields it
// refuses are left out, not written as null: Firecracker's x86_64 template has no such field.
inline std::string to_json(const CpuTemplate& t) {
    return to_json(t, Absent::Omitted);
}

}  // namespace ember::json
