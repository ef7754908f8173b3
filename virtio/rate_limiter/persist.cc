#include "virtio/rate_limiter/persist.h"

#include <tuple>

namespace ember::virtio {
namespace {

constexpr uint8_t kBandwidth = 1, kOps = 2;

}  // namespace

void put_rate_limiter(ByteWriter& w, const RateLimiterState& s) {
    w.put<uint8_t>((s.bandwidth ? kBandwidth : 0) | (s.ops ? kOps : 0));
    if (s.bandwidth) state_codec::put(w, *s.bandwidth, 1);
    if (s.ops) state_codec::put(w, *s.ops, 1);
}

Result<RateLimiterState> get_rate_limiter(ByteReader& r) {
    auto buckets = r.get<uint8_t>();
    EMBER_TRY(buckets);
    if ((*buckets & ~(kBandwidth | kOps)) != 0) return fail("a rate limiter names unknown buckets");
    RateLimiterState s;
    for (auto [bit, bucket, name] : {std::tuple{kBandwidth, &s.bandwidth, "bandwidth bucket"},
                                     std::tuple{kOps, &s.ops, "ops bucket"}})
        if (*buckets & bit) EMBER_TRY(state_codec::get_fields(r, name, 1, bucket->emplace()), name);
    return s;
}

}  // namespace ember::virtio
