// A rate limiter's snapshot state, written into its device's section (virtio/mmio/persist.h).
#pragma once

#include <concepts>
#include <type_traits>

#include "core/base/bytes.h"
#include "core/base/described.h"
#include "core/base/error.h"
#include "core/base/state_codec.h"
#include "virtio/rate_limiter/rate_limiter.h"

namespace ember::virtio {

// A bucket's fields (core/base/state_codec.h). The limiter writes a byte naming the buckets it
// has, then each.
void describe_state(Is<TokenBucketState> auto& b, auto&& v) {
    leaves(v, b.in_debt, b.tokens, b.one_time_burst, b.remainder, b.since_refill_ns);
}

void put_rate_limiter(ByteWriter& w, const RateLimiterState& s);
Result<RateLimiterState> get_rate_limiter(ByteReader& r);

}  // namespace ember::virtio
