#include "api/client/watchdog.h"

#include <algorithm>

namespace ember::client {
namespace {

// How often an expired watch's callback runs again until its call has ended.
constexpr std::chrono::milliseconds kRefire{20};

}  // namespace

Watchdog::Watchdog() : thread_([this](std::stop_token stop) { run(stop); }) {}

Watchdog::~Watchdog() {
    thread_.request_stop();
}

Watchdog::Watch Watchdog::watch(Clock::time_point deadline, std::function<void()> on_expiry) {
    std::lock_guard lock(mutex_);
    const uint64_t id = next_id_++;
    entries_.emplace(id, Entry{deadline, std::move(on_expiry)});
    wake_.notify_one();
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

void Watchdog::run(std::stop_token stop) {
    std::unique_lock lock(mutex_);
    while (!stop.stop_requested()) {
        if (entries_.empty()) {
            wake_.wait(lock, stop, [&] { return !entries_.empty(); });
            continue;
        }
        const auto earliest = std::min_element(
            entries_.begin(), entries_.end(),
            [](const auto& a, const auto& b) { return a.second.next < b.second.next; });
        const Clock::time_point when = earliest->second.next;
        if (Clock::now() < when) {
            // Woken early by a new watch, which may be due sooner, or by stop.
            const uint64_t made = next_id_;
            wake_.wait_until(lock, stop, when, [&] { return next_id_ != made; });
            continue;
        }
        // Under the lock, so that no callback outlives its watch.
        Entry& e = earliest->second;
        e.on_expiry();
        e.fired = true;
        e.next = Clock::now() + kRefire;
    }
}

}  // namespace ember::client
