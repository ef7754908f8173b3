// Firecracker's rate_limiter object ({"bandwidth": {...}, "ops": {...}}), shared by the drive and
// network interface bodies and their PATCH forms.
#pragma once

#include <optional>

#include "api/json/fields.h"
#include "core/config/vm_config.h"

namespace ember::json {

// The object under `key` in `parent`; nothing when it is absent or null.
Result<std::optional<RateLimiterConfig>> rate_limiter_from(Fields& parent, const char* key);

}  // namespace ember::json
