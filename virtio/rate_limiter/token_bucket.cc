#include "virtio/rate_limiter/token_bucket.h"

#include <algorithm>
#include <limits>
#include <string>

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
      burst_given_(burst_),
      last_(now) {}

TokenBucketState TokenBucket::state(Clock::time_point now) const {
    TokenBucketState s;
    s.in_debt = budget_ < 0;
    s.tokens = static_cast<uint64_t>(s.in_debt ? -budget_ : budget_);
    s.one_time_burst = burst_;
    s.remainder = remainder_;
    s.since_refill_ns =
        now > last_ ? static_cast<uint64_t>(
                          std::chrono::duration_cast<std::chrono::nanoseconds>(now - last_).count())
                    : 0;
    return s;
}

Result<void> TokenBucket::restore(const TokenBucketState& s, Clock::time_point now) {
    if (!s.in_debt && s.tokens > size_)
        return fail("a rate limiter bucket holds " + std::to_string(s.tokens) +
                    " tokens, more than its size " + std::to_string(size_));
    if (s.one_time_burst > burst_given_)
        return fail("a rate limiter bucket has " + std::to_string(s.one_time_burst) +
                    " burst tokens left, more than the " + std::to_string(burst_given_) +
                    " it was given");
    if (s.remainder != 0 && s.remainder >= refill_ns_)
        return fail("a rate limiter bucket's refill remainder is out of range");
    budget_ = s.in_debt ? -static_cast<Wide>(s.tokens) : static_cast<Wide>(s.tokens);
    burst_ = s.one_time_burst;
    remainder_ = s.remainder;
    // At most a century back: any longer refills the bucket just the same, and the time point
    // stays far from the clock's limits.
    constexpr uint64_t kLongest = 100ull * 365 * 24 * 3600 * 1'000'000'000;
    last_ = now - std::chrono::nanoseconds(std::min(s.since_refill_ns, kLongest));
    return {};
}

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
