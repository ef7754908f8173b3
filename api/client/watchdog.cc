#include "api/client/watchdog.h"

#include <algorithm>

namespace ember::client {
namespace {

// How often an expired watch's callback runs again until its call has ended, and how often a
// watch's check is asked.
constexpr std::chrono::milliseconds kRefire{20};
// With no watch, the thread still wakes this often, so that a new watch due later than that
// need not wake it: most calls end long before their bound, and a thread woken per call costs
// the caller a context switch.
constexpr std::chrono::milliseconds kIdleWake{1000};

}  // namespace

Watchdog::Watchdog() : thread_([this](const std::stop_token& stop) { run(stop); }) {}

Watchdog::~Watchdog() {
    thread_.request_stop();
}

Watchdog::Watch Watchdog::watch(Clock::time_point deadline, std::function<void()> on_expiry,
                                std::function<bool()> overrun) {
    std::lock_guard lock(mutex_);
    const uint64_t id = next_id_++;
    const auto next = overrun ? std::min(deadline, Clock::now() + kRefire) : deadline;
    entries_.emplace(id, Entry{next, deadline, std::move(on_expiry), std::move(overrun)});
    if (next < planned_wake_) wake_.notify_one();
    return Watch(this, id);
}

Watchdog::Watch::~Watch() {
    if (!dog_) return;
    std::lock_guard lock(dog_->mutex_);
    dog_->entries_.erase(id_);
}

bool Watchdog::Watch::fired() const {
    std::lock_guard lock(dog_->mutex_);
    auto it = dog_->entries_.find(id_);
    return it != dog_->entries_.end() && it->second.fired;
}

void Watchdog::run(const std::stop_token& stop) {
    std::unique_lock lock(mutex_);
    while (!stop.stop_requested()) {
        const auto now = Clock::now();
        auto earliest = std::min_element(
            entries_.begin(), entries_.end(),
            [](const auto& a, const auto& b) { return a.second.next < b.second.next; });
        if (earliest != entries_.end() && earliest->second.next <= now) {
            // Under the lock, so that no callback outlives its watch.
            Entry& e = earliest->second;
            if (e.overrun && !e.fired && now < e.deadline && !e.overrun()) {
                e.next = std::min(e.deadline, now + kRefire);
                continue;
            }
            e.on_expiry();
            e.fired = true;
            e.next = Clock::now() + kRefire;
            continue;
        }
        planned_wake_ = earliest != entries_.end() ? earliest->second.next : now + kIdleWake;
        // Woken early by a watch due sooner, or by stop.
        const uint64_t made = next_id_;
        wake_.wait_until(lock, stop, planned_wake_, [&] { return next_id_ != made; });
    }
}

}  // namespace ember::client
