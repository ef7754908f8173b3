#include "api/json/rate_limiter_json.h"

#include "api/json/config_codec.h"

namespace ember::json {

Result<std::optional<RateLimiterConfig>> rate_limiter_from(Fields& parent, const char* key) {
    std::optional<RateLimiterConfig> out;
    EMBER_TRY(codec::read_value(parent, config::Field{key}, out));
    return out;
}

}  // namespace ember::json
