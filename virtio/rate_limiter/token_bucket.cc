#include "virtio/rate_limiter/token_bucket.h"

#include <algorithm>

namespace ember::virtio {

TokenBucket::TokenBucket(const TokenBucketConfig& c, Clock::time_point now)
    : size_(c.size),
      refill_ns_(c.refill_time * 1000000ull),
      budget_(static_cast<int64_t>(c.size)),
      burst_(c.one_time_burst.value_or(0)),
      last_(now) {}

void TokenBucket::refill(Clock::time_point now) {
    if (now <= last_ || refill_ns_ == 0) return;
    auto elapsed = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(now - last_).count());
    last_ = now;
    // tokens = elapsed * size / refill_ns, keeping the fraction for next time. 128-bit so large
    // sizes and long idle periods cannot overflow.
    unsigned __int128 scaled = static_cast<unsigned __int128>(elapsed) * size_ + remainder_;
    auto tokens =
        static_cast<uint64_t>(std::min<unsigned __int128>(scaled / refill_ns_, size_ * 2 + 1));
    remainder_ = static_cast<uint64_t>(scaled % refill_ns_);
    budget_ =
        std::min<int64_t>(budget_ + static_cast<int64_t>(tokens), static_cast<int64_t>(size_));
    if (budget_ == static_cast<int64_t>(size_)) remainder_ = 0;
}

bool TokenBucket::take(uint64_t n, Clock::time_point now) {
    if (size_ == 0) return true;  // an empty bucket config means no limit
    uint64_t from_burst = std::min(n, burst_);
    burst_ -= from_burst;
    n -= from_burst;
    if (n == 0) return true;
    refill(now);
    if (budget_ >= static_cast<int64_t>(n)) {
        budget_ -= static_cast<int64_t>(n);
        return true;
    }
    if (n > size_ && budget_ == static_cast<int64_t>(size_)) {
        budget_ -= static_cast<int64_t>(n);
        return true;
    }
    burst_ += from_burst;
    return false;
}

void TokenBucket::give_back(uint64_t n) {
    budget_ = std::min<int64_t>(budget_ + static_cast<int64_t>(n), static_cast<int64_t>(size_));
}

std::chrono::nanoseconds TokenBucket::wait_for(uint64_t n, Clock::time_point now) {
    if (size_ == 0) return std::chrono::nanoseconds(0);
    refill(now);
    int64_t target = static_cast<int64_t>(std::min(n, size_));
    if (n > size_)
        target = static_cast<int64_t>(size_);  // oversized requests wait for a full bucket
    if (budget_ >= target) return std::chrono::nanoseconds(0);
    auto missing = static_cast<uint64_t>(target - budget_);
    unsigned __int128 ns =
        (static_cast<unsigned __int128>(missing) * refill_ns_ + size_ - 1) / size_;
    return std::chrono::nanoseconds(static_cast<int64_t>(ns));
}

}  // namespace ember::virtio
