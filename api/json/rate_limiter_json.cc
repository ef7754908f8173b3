#include "api/json/rate_limiter_json.h"

namespace ember::json {
namespace {

Result<TokenBucketConfig> bucket_from(simdjson::dom::object o, const std::string& path) {
    Fields f(o, path);
    TokenBucketConfig b;
    auto size = f.required(f.u64("size"), "size");
    if (!size) return std::unexpected(size.error());
    b.size = *size;
    auto refill = f.required(f.u64("refill_time"), "refill_time");
    if (!refill) return std::unexpected(refill.error());
    b.refill_time = *refill;
    EMBER_TRY(take(f.u64("one_time_burst"), b.one_time_burst));
    EMBER_TRY(f.finish());
    return b;
}

}  // namespace

Result<std::optional<RateLimiterConfig>> rate_limiter_from(Fields& parent, const char* key) {
    auto o = parent.object(key);
    if (!o) return std::unexpected(o.error());
    if (!*o) return std::nullopt;
    const std::string path = parent.path_of(key);
    Fields f(**o, path);
    RateLimiterConfig rl;
    for (auto [name, slot] : {std::pair{"bandwidth", &rl.bandwidth}, std::pair{"ops", &rl.ops}}) {
        auto b = f.object(name);
        if (!b) return std::unexpected(b.error());
        if (*b) {
            auto bucket = bucket_from(**b, f.path_of(name));
            if (!bucket) return std::unexpected(bucket.error());
            *slot = *bucket;
        }
    }
    EMBER_TRY(f.finish());
    return rl;
}

}  // namespace ember::json
