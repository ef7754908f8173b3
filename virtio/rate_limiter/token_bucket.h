// virtio/rate_limiter: Firecracker's token buckets, shared by virtio-blk and virtio-net. A bucket
// holds up to `size` tokens and refills `size` of them every `refill_time` ms; a one-time burst is
// spent first and never refilled. Time is passed in, so tests control it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>

#include "core/base/error.h"
#include "core/config/vm_config.h"

namespace ember::virtio {

using Clock = std::chrono::steady_clock;
// Where a device reads the time for its rate limiters: the real clock, or a test's.
using TimeSource = std::function<Clock::time_point()>;

// What a snapshot keeps of a bucket, as Firecracker's RateLimiterState does: its tokens (or its
// debt), what is left of its one-time burst, and how long before the snapshot it last refilled, so
// that tokens spent before a snapshot stay spent after it. The time on disk is not counted.
struct TokenBucketState {
    bool in_debt = false;
    uint64_t tokens = 0;  // the budget, or the debt when in_debt
    uint64_t one_time_burst = 0;
    uint64_t remainder = 0;  // the refill's fraction of a token, in token*ns
    uint64_t since_refill_ns = 0;
};

class TokenBucket {
  public:
    TokenBucket(const TokenBucketConfig& config, Clock::time_point now);

    // Takes `n` tokens if there are enough. A request larger than the whole bucket is let through
    // when the bucket is full, leaving it in debt, so oversized I/O is slowed, never starved.
    bool take(uint64_t n, Clock::time_point now);
    // Gives back tokens taken for work that did not happen.
    void give_back(uint64_t n);
    // How long until `n` tokens could be taken (zero if they can now).
    std::chrono::nanoseconds wait_for(uint64_t n, Clock::time_point now);

    TokenBucketState state(Clock::time_point now) const;
    // Takes back a state; one this bucket's configuration could not have reached (more tokens
    // than its size, more burst than it was given) is refused, and nothing changes.
    Result<void> restore(const TokenBucketState& state, Clock::time_point now);

    uint64_t budget() const { return budget_ > 0 ? static_cast<uint64_t>(budget_) : 0; }
    uint64_t one_time_burst() const { return burst_; }

  private:
    void refill(Clock::time_point now);

    // Any u64 is valid in the API: the budget is 128-bit, so a full bucket of 2^64-1 tokens and a
    // debt of as many both fit, and sums never wrap.
    using Wide = __int128;

    uint64_t size_;
    uint64_t refill_ns_;  // saturates at UINT64_MAX (584 years)
    Wide budget_;         // negative while in debt
    uint64_t burst_;
    uint64_t burst_given_;  // the configuration's one-time burst
    Clock::time_point last_;
    uint64_t remainder_ = 0;  // sub-token refill carried between calls, in token*ns units
};

}  // namespace ember::virtio
