// Token buckets and the rate limiter, with time injected: no test sleeps or measures wall time.
#include <gtest/gtest.h>

#include <sys/timerfd.h>

#include "virtio/rate_limiter/rate_limiter.h"

namespace ember::virtio {
namespace {

using namespace std::chrono_literals;

const Clock::time_point t0{};

TEST(TokenBucket, SpendsThenRefillsAtSizePerRefillTime) {
    TokenBucket b(TokenBucketConfig{1000, std::nullopt, 100}, t0);  // 1000 tokens per 100 ms
    EXPECT_TRUE(b.take(600, t0));
    EXPECT_FALSE(b.take(600, t0));
    EXPECT_EQ(b.wait_for(600, t0), 20ms);  // 200 missing at 10 tokens/ms
    EXPECT_FALSE(b.take(600, t0 + 19ms));
    EXPECT_TRUE(b.take(600, t0 + 20ms));
    EXPECT_EQ(b.budget(), 0u);
    EXPECT_TRUE(b.take(1000, t0 + 1s)) << "refill is capped at the size, but a full bucket is full";
    EXPECT_FALSE(b.take(1, t0 + 1s));
}

TEST(TokenBucket, OneTimeBurstIsSpentFirstAndNeverRefilled) {
    TokenBucket b(TokenBucketConfig{100, 500, 1000}, t0);
    EXPECT_TRUE(b.take(500, t0));
    EXPECT_EQ(b.one_time_burst(), 0u);
    EXPECT_EQ(b.budget(), 100u);
    EXPECT_TRUE(b.take(100, t0));
    EXPECT_FALSE(b.take(1, t0));
    EXPECT_TRUE(b.take(100, t0 + 1s));
    EXPECT_EQ(b.one_time_burst(), 0u);
}

TEST(TokenBucket, OversizedRequestPassesOnlyWhenFullAndLeavesDebt) {
    TokenBucket b(TokenBucketConfig{100, std::nullopt, 100}, t0);
    EXPECT_TRUE(b.take(250, t0)) << "larger than the bucket: let through from a full bucket";
    EXPECT_FALSE(b.take(1, t0 + 100ms)) << "the debt of 150 is not yet repaid";
    EXPECT_TRUE(b.take(1, t0 + 151ms));
    EXPECT_FALSE(b.take(250, t0 + 151ms)) << "not full: the oversized request waits";
}

// Any u64 is a valid size, burst and refill_time in Firecracker's API: none may overflow into a
// negative budget, a refill that empties the bucket, or a negative wait.
TEST(TokenBucket, ExtremeValuesNeitherOverflowNorStarve) {
    constexpr uint64_t kMax = UINT64_MAX;
    TokenBucket huge(TokenBucketConfig{kMax, std::nullopt, 1}, t0);
    EXPECT_EQ(huge.budget(), kMax);
    EXPECT_TRUE(huge.take(1ull << 62, t0));
    EXPECT_TRUE(huge.take(1ull << 62, t0 + 1h));
    EXPECT_EQ(huge.budget(), kMax - (1ull << 62))
        << "a long idle time refills to the size, never past it";
    EXPECT_TRUE(huge.take(kMax, t0 + 2h));
    EXPECT_EQ(huge.budget(), 0u);
    EXPECT_FALSE(huge.take(1, t0 + 2h));
    EXPECT_GE(huge.wait_for(kMax, t0 + 2h), 0ns);
    EXPECT_TRUE(huge.take(1, t0 + 2h + 1ms));

    TokenBucket slow(TokenBucketConfig{10, kMax, kMax}, t0);  // refill_time * 1e6 overflows
    EXPECT_TRUE(slow.take(kMax, t0)) << "the whole burst is there to spend";
    EXPECT_TRUE(slow.take(10, t0));
    EXPECT_FALSE(slow.take(1, t0 + 24h * 365)) << "a year refills nothing of a 584-year period";
    EXPECT_GT(slow.wait_for(1, t0 + 1s), 24h * 365);

    TokenBucket small(TokenBucketConfig{1, std::nullopt, 1}, t0);
    EXPECT_TRUE(small.take(kMax, t0)) << "oversized, from a full bucket: let through into debt";
    EXPECT_FALSE(small.take(1, t0 + 1h)) << "the debt is the whole request";
    EXPECT_GE(small.wait_for(1, t0 + 1h), 0ns);
    small.give_back(kMax);
    EXPECT_EQ(small.budget(), 1u);
}

TEST(TokenBucket, ZeroSizeMeansUnlimited) {
    TokenBucket b(TokenBucketConfig{0, std::nullopt, 0}, t0);
    EXPECT_TRUE(b.take(1ull << 40, t0));
    EXPECT_EQ(b.wait_for(1ull << 40, t0), 0ns);
}

TEST(RateLimiter, ThrottlesOnEitherBucketAndArmsItsTimer) {
    RateLimiterConfig config{TokenBucketConfig{4096, std::nullopt, 1000},
                             TokenBucketConfig{2, std::nullopt, 1000}};
    auto rl = RateLimiter::create(config, t0);
    ASSERT_TRUE(rl);
    ASSERT_GE(rl->timer_fd(), 0);
    EXPECT_TRUE(rl->consume(1024, t0));
    EXPECT_TRUE(rl->consume(1024, t0));
    EXPECT_FALSE(rl->consume(1024, t0)) << "out of ops";
    EXPECT_TRUE(rl->throttled());
    EXPECT_FALSE(rl->consume(1, t0 + 10s)) << "stays throttled until the timer fires";
    itimerspec armed{};
    ASSERT_EQ(::timerfd_gettime(rl->timer_fd(), &armed), 0);
    EXPECT_TRUE(armed.it_value.tv_sec != 0 || armed.it_value.tv_nsec != 0);
    EXPECT_EQ(rl->counters().throttled_events, 1u);
}

TEST(RateLimiter, NoConfigNeverThrottles) {
    auto rl = RateLimiter::create(std::nullopt, t0);
    ASSERT_TRUE(rl);
    EXPECT_EQ(rl->timer_fd(), -1);
    for (int i = 0; i < 1000; ++i) EXPECT_TRUE(rl->consume(1 << 20, t0));
}

TEST(RateLimiter, BandwidthFailureGivesTheOpBack) {
    // Bandwidth refills in 1 ms; ops hardly refill at all (10 per 1000 s).
    RateLimiterConfig config{TokenBucketConfig{1000, std::nullopt, 1},
                             TokenBucketConfig{10, std::nullopt, 1000000}};
    auto rl = RateLimiter::create(config, t0);
    ASSERT_TRUE(rl->consume(1000, t0));
    EXPECT_FALSE(rl->consume(500, t0)) << "bandwidth exhausted";
    rl->on_timer();
    // 9 ops remain, not 8: the failed attempt's op was returned.
    for (int i = 0; i < 9; ++i) EXPECT_TRUE(rl->consume(1, t0 + 1s)) << i;
    EXPECT_FALSE(rl->consume(1, t0 + 1s));
}

}  // namespace
}  // namespace ember::virtio
