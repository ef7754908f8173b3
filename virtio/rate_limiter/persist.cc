#include "virtio/rate_limiter/persist.h"

namespace ember::virtio {
namespace {

constexpr uint8_t kBandwidth = 1, kOps = 2;

void put_bucket(ByteWriter& w, const TokenBucketState& b) {
    w.put<uint8_t>(b.in_debt);
    w.put(b.tokens);
    w.put(b.one_time_burst);
    w.put(b.remainder);
    w.put(b.since_refill_ns);
}

Result<TokenBucketState> get_bucket(ByteReader& r) {
    TokenBucketState b;
    EMBER_TRY(read_into(r, b.in_debt));
    EMBER_TRY(read_into(r, b.tokens));
    EMBER_TRY(read_into(r, b.one_time_burst));
    EMBER_TRY(read_into(r, b.remainder));
    EMBER_TRY(read_into(r, b.since_refill_ns));
    return b;
}

}  // namespace

void put_rate_limiter(ByteWriter& w, const RateLimiterState& s) {
    w.put<uint8_t>((s.bandwidth ? kBandwidth : 0) | (s.ops ? kOps : 0));
    if (s.bandwidth) put_bucket(w, *s.bandwidth);
    if (s.ops) put_bucket(w, *s.ops);
}

Result<RateLimiterState> get_rate_limiter(ByteReader& r) {
    auto buckets = r.get<uint8_t>();
    EMBER_TRY(buckets);
    if ((*buckets & ~(kBandwidth | kOps)) != 0) return fail("a rate limiter names unknown buckets");
    RateLimiterState s;
    if (*buckets & kBandwidth) {
        auto b = get_bucket(r);
        EMBER_TRY(b, "bandwidth bucket");
        s.bandwidth = *b;
    }
    if (*buckets & kOps) {
        auto b = get_bucket(r);
        EMBER_TRY(b, "ops bucket");
        s.ops = *b;
    }
    return s;
}

}  // namespace ember::virtio
