// Token buckets and the rate limiter, with time injected: no test sleeps or measures wall time.
#include <gtest/gtest.h>

#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "core/base/bytes.h"
#include "virtio/rate_limiter/persist.h"
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

// A live update's limiter is watched before anything changes: dropped (a refused update), the
// device keeps its limiter and its watch; put, the new one takes both places.
TEST(PendingLimiter, ChangesNothingUntilPutThenTakesTheOldOnesPlaceAndWatch) {
    auto loop = EventLoop::create();
    ASSERT_TRUE(loop);
    const RateLimiterConfig config{TokenBucketConfig{4096, std::nullopt, 1000}, std::nullopt};
    auto handler = [](uint32_t) {};
    auto first = RateLimiter::create(config, t0);
    ASSERT_TRUE(first);
    auto current = RateLimiter::create(std::nullopt, t0);
    ASSERT_TRUE(current);
    auto watched = PendingLimiter::watch(std::move(*first), &*loop, handler);
    ASSERT_TRUE(watched);
    std::move(*watched).put(*current);
    const int old_fd = current->timer_fd();
    ASSERT_GE(old_fd, 0);
    EXPECT_TRUE(loop->modify(old_fd, EPOLLIN)) << "the limiter put in place is watched";
    {
        auto next = RateLimiter::create(config, t0);
        ASSERT_TRUE(next);
        auto pending = PendingLimiter::watch(std::move(*next), &*loop, handler);
        ASSERT_TRUE(pending);
        EXPECT_TRUE(loop->modify(pending->timer_fd(), EPOLLIN));
    }
    EXPECT_EQ(current->timer_fd(), old_fd) << "a dropped update left the limiter as it was";
    EXPECT_TRUE(loop->modify(old_fd, EPOLLIN)) << "and its watch";

    auto unlimited = RateLimiter::create(std::nullopt, t0);
    ASSERT_TRUE(unlimited);
    auto pending = PendingLimiter::watch(std::move(*unlimited), &*loop, handler);
    ASSERT_TRUE(pending);
    const int dup = ::dup(old_fd);
    ASSERT_GE(dup, 0);
    std::move(*pending).put(*current);
    EXPECT_EQ(current->timer_fd(), -1);
    // epoll keys a watch by the file and the number: with the old timer's file kept open through
    // `dup` and put back under its number, a watch left behind would still answer.
    ASSERT_EQ(::dup2(dup, old_fd), old_fd);
    EXPECT_FALSE(loop->modify(old_fd, EPOLLIN)) << "the old limiter's watch went with it";
    ::close(old_fd);
    ::close(dup);
}

TEST(RateLimiter, NoConfigNeverThrottles) {
    auto rl = RateLimiter::create(std::nullopt, t0);
    ASSERT_TRUE(rl);
    EXPECT_EQ(rl->timer_fd(), -1);
    for (int i = 0; i < 1000; ++i) EXPECT_TRUE(rl->consume(1 << 20, t0));
}

// A device passes its clock, read per frame only where there is a bucket to fill.
TEST(RateLimiter, ReadsTheClockOnlyWhereABucketIsSet) {
    int reads = 0;
    const TimeSource clock = [&] {
        ++reads;
        return t0 + 1s;
    };
    auto none = RateLimiter::create(std::nullopt, t0);
    ASSERT_TRUE(none);
    for (int i = 0; i < 100; ++i) EXPECT_TRUE(none->consume(1 << 20, clock));
    EXPECT_EQ(reads, 0);

    auto ops = RateLimiter::create(
        RateLimiterConfig{std::nullopt, TokenBucketConfig{2, std::nullopt, 1000}}, t0);
    ASSERT_TRUE(ops);
    EXPECT_TRUE(ops->consume(1, clock));
    EXPECT_TRUE(ops->consume(1, clock));
    EXPECT_FALSE(ops->consume(1, clock)) << "two ops a second, taken at one instant";
    EXPECT_EQ(reads, 3);
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

// A snapshot at t0 + 30 ms of a bucket that spent 600 of 1000 tokens at t0 (refilling 10 a ms):
// restored in another process at its own time t1, it holds 400, refills from 30 ms since its
// last refill, and has its burst left as it was. The time between is not counted.
TEST(TokenBucketState, TokensSpentBeforeASnapshotStaySpentAfterIt) {
    const TokenBucketConfig config{1000, 300, 100};
    TokenBucket before(config, t0);
    EXPECT_TRUE(before.take(200, t0));  // from the burst
    EXPECT_TRUE(before.take(700, t0));  // 100 more from the burst, 600 from the bucket
    const TokenBucketState saved = before.state(t0 + 30ms);
    EXPECT_EQ(saved.tokens, 400u);
    EXPECT_EQ(saved.one_time_burst, 0u);
    EXPECT_EQ(saved.since_refill_ns, 30'000'000u);

    const Clock::time_point t1 = t0 + 24h;
    TokenBucket after(config, t1);
    ASSERT_TRUE(after.restore(saved, t1));
    EXPECT_EQ(after.budget(), 400u);
    EXPECT_EQ(after.one_time_burst(), 0u);
    EXPECT_TRUE(after.take(700, t1)) << "the 30 ms since the last refill bring 300";
    EXPECT_FALSE(after.take(1, t1));
    EXPECT_EQ(after.wait_for(100, t1), 10ms);
}

TEST(TokenBucketState, ADebtSurvivesAndAStateTheConfigCannotReachIsRefused) {
    const TokenBucketConfig config{100, 50, 100};
    TokenBucket before(config, t0);
    EXPECT_TRUE(before.take(50, t0));
    EXPECT_TRUE(before.take(250, t0));  // oversized: 150 in debt
    const TokenBucketState debt = before.state(t0);
    EXPECT_TRUE(debt.in_debt);
    EXPECT_EQ(debt.tokens, 150u);
    TokenBucket after(config, t0);
    ASSERT_TRUE(after.restore(debt, t0));
    EXPECT_EQ(after.wait_for(1, t0), 151ms) << "151 tokens short at 1 a ms";

    TokenBucket fresh(config, t0);
    TokenBucketState too_full;
    too_full.tokens = 101;
    auto r = fresh.restore(too_full, t0);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("more than its size 100"), std::string::npos)
        << r.error().message;
    TokenBucketState too_much_burst;
    too_much_burst.one_time_burst = 51;
    EXPECT_FALSE(fresh.restore(too_much_burst, t0));
    TokenBucketState bad_remainder;
    bad_remainder.remainder = 100'000'000;  // a whole refill period of token*ns per token
    EXPECT_FALSE(fresh.restore(bad_remainder, t0));
    EXPECT_EQ(fresh.budget(), 100u) << "a refused state changes nothing";
    EXPECT_EQ(fresh.one_time_burst(), 50u);
}

TEST(RateLimiterState, RoundTripsThroughBytesAndRefusesWhatWasNeverWritten) {
    auto limiter = RateLimiter::create(RateLimiterConfig{TokenBucketConfig{1000, std::nullopt, 100},
                                                         TokenBucketConfig{10, 5, 1000}},
                                       t0);
    ASSERT_TRUE(limiter);
    EXPECT_TRUE(limiter->consume(900, t0));
    ByteWriter w;
    put_rate_limiter(w, limiter->state(t0));
    ByteReader r(w.bytes(), "test");
    auto back = get_rate_limiter(r);
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_TRUE(r.done());
    ASSERT_TRUE(back->bandwidth && back->ops);
    EXPECT_EQ(back->bandwidth->tokens, 100u);
    EXPECT_EQ(back->ops->one_time_burst, 4u);

    auto restored =
        RateLimiter::create(RateLimiterConfig{TokenBucketConfig{1000, std::nullopt, 100},
                                              TokenBucketConfig{10, 5, 1000}},
                            t0);
    ASSERT_TRUE(restored->restore(*back, t0));
    EXPECT_FALSE(restored->consume(101, t0)) << "only 100 bytes were left";

    auto bandwidth_only = RateLimiter::create(
        RateLimiterConfig{TokenBucketConfig{1000, std::nullopt, 100}, std::nullopt}, t0);
    auto mismatch = bandwidth_only->restore(*back, t0);
    ASSERT_FALSE(mismatch);
    EXPECT_NE(mismatch.error().message.find("not the ones its configuration gives"),
              std::string::npos)
        << mismatch.error().message;

    std::vector<uint8_t> unknown = w.bytes();
    unknown[0] |= 4;
    ByteReader u(unknown, "test");
    EXPECT_FALSE(get_rate_limiter(u));
    std::vector<uint8_t> cut(w.bytes().begin(), w.bytes().end() - 1);
    ByteReader c(cut, "test");
    EXPECT_FALSE(get_rate_limiter(c));
}

}  // namespace
}  // namespace ember::virtio
