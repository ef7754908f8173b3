#include "virtio/rate_limiter/rate_limiter.h"

#include <utility>

#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>

#include "core/base/timer_fd.h"

namespace ember::virtio {

Result<RateLimiter> RateLimiter::create(const std::optional<RateLimiterConfig>& config,
                                        Clock::time_point now) {
    RateLimiter rl;
    if (!config) return rl;
    if (config->bandwidth && config->bandwidth->size)
        rl.bandwidth_.emplace(*config->bandwidth, now);
    if (config->ops && config->ops->size) rl.ops_.emplace(*config->ops, now);
    if (!rl.bandwidth_ && !rl.ops_) return rl;
    int fd = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (fd < 0) return fail_errno("rate limiter timerfd_create");
    rl.timer_.reset(fd);
    return rl;
}

bool RateLimiter::consume(uint64_t bytes, Clock::time_point now) {
    if (!bandwidth_ && !ops_) return true;
    if (throttled_) return false;
    bool ops_ok = !ops_ || ops_->take(1, now);
    bool bytes_ok = ops_ok && (!bandwidth_ || bandwidth_->take(bytes, now));
    if (bytes_ok) return true;
    if (ops_ok && ops_) ops_->give_back(1);
    auto wait =
        std::max(ops_ ? ops_->wait_for(1, now) : std::chrono::nanoseconds(0),
                 bandwidth_ ? bandwidth_->wait_for(bytes, now) : std::chrono::nanoseconds(0));
    arm(std::max(wait, std::chrono::nanoseconds(100000)));
    throttled_ = true;
    ++counters_.throttled_events;
    return false;
}

void RateLimiter::give_back(uint64_t bytes) {
    if (ops_) ops_->give_back(1);
    if (bandwidth_) bandwidth_->give_back(bytes);
}

void RateLimiter::arm(std::chrono::nanoseconds delay) {
    arm_timer(timer_.get(), delay);
}

void RateLimiter::on_timer() {
    uint64_t expirations;
    [[maybe_unused]] ssize_t n = ::read(timer_.get(), &expirations, sizeof expirations);
    throttled_ = false;
}

RateLimiterState RateLimiter::state(Clock::time_point now) const {
    RateLimiterState s;
    if (bandwidth_) s.bandwidth = bandwidth_->state(now);
    if (ops_) s.ops = ops_->state(now);
    return s;
}

Result<void> RateLimiter::restore(const RateLimiterState& s, Clock::time_point now) {
    if (s.bandwidth.has_value() != bandwidth_.has_value() || s.ops.has_value() != ops_.has_value())
        return fail("the saved rate limiter's buckets are not the ones its configuration gives");
    std::optional<TokenBucket> bandwidth = bandwidth_, ops = ops_;
    if (bandwidth) EMBER_TRY(bandwidth->restore(*s.bandwidth, now), "bandwidth");
    if (ops) EMBER_TRY(ops->restore(*s.ops, now), "ops");
    bandwidth_ = bandwidth;
    ops_ = ops;
    return {};
}

Result<PendingLimiter> PendingLimiter::watch(RateLimiter next, EventLoop* loop,
                                             EventLoop::Handler on_timer) {
    const bool watched = loop != nullptr && next.timer_fd() >= 0;
    if (watched) EMBER_TRY(loop->add(next.timer_fd(), EPOLLIN, std::move(on_timer)));
    return PendingLimiter(std::move(next), loop, watched);
}

Result<PendingLimiter> PendingLimiter::make(const std::optional<RateLimiterConfig>& now,
                                            const RateLimiterConfig& update, Clock::time_point t,
                                            EventLoop* loop, EventLoop::Handler on_timer) {
    const RateLimiterConfig limits = updated_rate_limiter(now, update);
    auto next = RateLimiter::create(limits, t);
    EMBER_TRY(next);
    auto pending = watch(std::move(*next), loop, std::move(on_timer));
    EMBER_TRY(pending);
    pending->limits_ = limits;
    return pending;
}

PendingLimiter::PendingLimiter(PendingLimiter&& other) noexcept
    : next_(std::move(other.next_)),
      limits_(other.limits_),
      loop_(other.loop_),
      watched_(std::exchange(other.watched_, false)) {}

PendingLimiter::~PendingLimiter() {
    if (watched_) loop_->remove(next_->timer_fd());
}

void PendingLimiter::put(RateLimiter& current) && {
    if (loop_ != nullptr && current.timer_fd() >= 0) loop_->remove(current.timer_fd());
    current = std::move(*next_);
    watched_ = false;
}

void PendingLimiter::put(RateLimiter& current, std::optional<RateLimiterConfig>& config) && {
    config = limits_;
    std::move(*this).put(current);
}

}  // namespace ember::virtio
