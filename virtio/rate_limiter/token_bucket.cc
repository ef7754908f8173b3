#include "virtio/rate_limiter/token_bucket.h"

#include <algorithm>
#include <limits>

namespace ember::virtio {
namespace {

constexpr uint64_t kNsPerMs = 1000000;

uint64_t refill_ns(uint64_t refill_time_ms) {
    if (refill_time_ms > std::numeric_limits<uint64_t>::max() / kNsPerMs)
        return std::numeric_limits<uint64_t>::max();
    return refill_time_ms * kNsPerMs;
}

}  // namespace

TokenBucket::TokenBucket(const TokenBucketConfig& c, Clock::time_point now)
    : size_(c.size),
      refill_ns_(refill_ns(c.refill_time)),
      budget_(c.size),
      burst_(c.one_time_burst.value_or(0)),
      last_(now) {}

void TokenBucket::refill(Clock::time_point now) {
    if (now <= last_ || refill_ns_ == 0) return;
    auto elapsed = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(now - last_).count());
    last_ = now;
    // tokens = elapsed * size / refill_ns, keeping the fraction for next time. Both factors are
    // below 2^64, so the product and the remainder fit 128 bits.
    unsigned __int128 scaled = static_cast<unsigned __int128>(elapsed) * size_ + remainder_;
    unsigned __int128 tokens = scaled / refill_ns_;
    remainder_ = static_cast<uint64_t>(scaled % refill_ns_);
    // The budget is at least -2^64 and at most size: a refill past twice the size only ever fills.
    tokens = std::min<unsigned __int128>(tokens, static_cast<unsigned __int128>(size_) * 3);
    budget_ = std::min<Wide>(budget_ + static_cast<Wide>(tokens), size_);
    if (budget_ == static_cast<Wide>(size_)) remainder_ = 0;
}

bool TokenBucket::take(uint64_t n, Clock::time_point now) {
    if (size_ == 0) return true;  // an empty bucket config means no limit
    uint64_t from_burst = std::min(n, burst_);
    burst_ -= from_burst;
    n -= from_burst;
    if (n == 0) return true;
    refill(now);
    if (budget_ >= static_cast<Wide>(n) || (n > size_ && budget_ == static_cast<Wide>(size_))) {
        budget_ -= n;
        return true;
    }
    burst_ += from_burst;
    return false;
}

void TokenBucket::give_back(uint64_t n) {
    budget_ = std::min<Wide>(budget_ + n, size_);
}

std::chrono::nanoseconds TokenBucket::wait_for(uint64_t n, Clock::time_point now) {
    if (size_ == 0) return std::chrono::nanoseconds(0);
    refill(now);
    // Oversized requests wait for a full bucket.
    const Wide target = std::min(n, size_);
    if (budget_ >= target) return std::chrono::nanoseconds(0);
    // missing * refill_ns / size, rounded up, saturating at the longest wait a duration holds.
    const auto missing = static_cast<unsigned __int128>(target - budget_);
    constexpr auto kLongest = static_cast<unsigned __int128>(std::numeric_limits<int64_t>::max());
    const unsigned __int128 whole = missing / size_, part = missing % size_;
    if (whole > kLongest / std::max<uint64_t>(refill_ns_, 1))
        return std::chrono::nanoseconds::max();
    const unsigned __int128 ns = whole * refill_ns_ + (part * refill_ns_ + size_ - 1) /
                                                          size_;  // part < size < 2^64: no overflow
    return std::chrono::nanoseconds(static_cast<int64_t>(std::min(ns, kLongest)));
}

}  // namespace ember::virtio
