// A rate limiter's snapshot state, written into its device's section (virtio/mmio/persist.h).
#pragma once

#include "core/base/bytes.h"
#include "core/base/error.h"
#include "virtio/rate_limiter/rate_limiter.h"

namespace ember::virtio {

void put_rate_limiter(ByteWriter& w, const RateLimiterState& s);
Result<RateLimiterState> get_rate_limiter(ByteReader& r);

}  // namespace ember::virtio
