// A bandwidth bucket and an ops bucket, and the timerfd that wakes a throttled queue when the
// buckets will have refilled enough. The device asks consume() before doing I/O; on false it stops
// taking requests and the VMM loop calls it back when timer_fd() fires.
#pragma once

#include <optional>

#include "core/base/error.h"
#include "core/base/unique_fd.h"
#include "core/event_loop/event_loop.h"
#include "virtio/rate_limiter/token_bucket.h"

namespace ember::virtio {

// A rate limiter's buckets as a snapshot keeps them; a bucket the limiter lacks is absent.
struct RateLimiterState {
    std::optional<TokenBucketState> bandwidth;
    std::optional<TokenBucketState> ops;
};

class RateLimiter {
  public:
    // No config, or neither bucket: never throttles and makes no timer.
    static Result<RateLimiter> create(const std::optional<RateLimiterConfig>& config,
                                      Clock::time_point now);

    // Takes `bytes` from the bandwidth bucket and one op; both or neither. On false the timer
    // is armed for when both would succeed.
    bool consume(uint64_t bytes, Clock::time_point now);
    // The same, reading the clock only where a bucket is set: a device's I/O path, per frame.
    bool consume(uint64_t bytes, const TimeSource& clock) {
        return (!bandwidth_ && !ops_) || consume(bytes, clock());
    }
    // Returns what consume(bytes) took, for I/O that did not happen after all.
    void give_back(uint64_t bytes);
    bool throttled() const { return throttled_; }
    // -1 when unlimited.
    int timer_fd() const { return timer_.get(); }
    // Clears the timer's expiry count; call when timer_fd() is readable.
    void on_timer();

    RateLimiterState state(Clock::time_point now) const;
    // Takes back what state() saved, for the same configuration: a bucket the state has and this
    // limiter does not (or the reverse) is refused, and nothing changes. A restored limiter is not
    // throttled: its queue is tried again, and throttles anew if its buckets are still short.
    Result<void> restore(const RateLimiterState& state, Clock::time_point now);

    struct Counters {
        uint64_t throttled_events = 0;
    };
    const Counters& counters() const { return counters_; }

  private:
    RateLimiter() = default;
    void arm(std::chrono::nanoseconds delay);

    std::optional<TokenBucket> bandwidth_;
    std::optional<TokenBucket> ops_;
    UniqueFd timer_;
    bool throttled_ = false;
    Counters counters_;
};

// A rate limiter made for a live update, its timer already watched in the device's loop (when the
// device is attached to one): the part of an update that can fail, done before anything changes.
// Dropped, it takes its watch back, so a refused update leaves the device as it was; put() puts
// it in place of the old limiter, whose watch goes.
class PendingLimiter {
  public:
    // `update` applied to the device's limits (`now`), as Firecracker applies one.
    static Result<PendingLimiter> make(const std::optional<RateLimiterConfig>& now,
                                       const RateLimiterConfig& update, Clock::time_point t,
                                       EventLoop* loop, EventLoop::Handler on_timer);
    static Result<PendingLimiter> watch(RateLimiter next, EventLoop* loop,
                                        EventLoop::Handler on_timer);
    PendingLimiter(PendingLimiter&& other) noexcept;
    PendingLimiter& operator=(PendingLimiter&&) = delete;
    ~PendingLimiter();

    int timer_fd() const { return next_->timer_fd(); }
    // In place of `current`; with make()'s limits put in `config` too.
    void put(RateLimiter& current) &&;
    void put(RateLimiter& current, std::optional<RateLimiterConfig>& config) &&;

  private:
    PendingLimiter(RateLimiter next, EventLoop* loop, bool watched)
        : next_(std::move(next)), loop_(loop), watched_(watched) {}
    std::optional<RateLimiter> next_;
    std::optional<RateLimiterConfig> limits_;  // make()'s
    EventLoop* loop_;                          // the device's, or null before it is attached
    bool watched_;                             // next_'s timer is in loop_, and not yet put
};

}  // namespace ember::virtio
