#include "core/base/log_limit.h"

#include <algorithm>
#include <atomic>

namespace ember::log {
namespace {

// Room for the first lines of every place a guest trips at once (each burst is ten lines of a
// few hundred bytes), then about a line a second for the whole process, however many places.
constexpr uint64_t kSharedBurst = 32 << 10;
constexpr uint64_t kSharedPerSecond = 256;
// A line's prefix (time, instance, thread, level) as the budget counts it.
constexpr uint64_t kPrefixBytes = 64;

// Process-wide, as the log is (log.h).
std::atomic<uint64_t> g_dropped{0};

}  // namespace

std::optional<uint64_t> LineLimit::admit(Clock::time_point now) {
    std::lock_guard lock(mutex_);
    if (!started_) {
        started_ = true;
        tokens_ = burst_;
        refilled_ = now;
    } else if (tokens_ < burst_ && now - refilled_ >= period_) {
        const auto periods = static_cast<uint64_t>((now - refilled_) / period_);
        tokens_ = static_cast<uint32_t>(std::min<uint64_t>(burst_, tokens_ + periods));
        refilled_ += period_ * static_cast<Clock::rep>(periods);
    }
    if (tokens_ == 0) {
        ++dropped_;
        g_dropped.fetch_add(1, std::memory_order_relaxed);
        return std::nullopt;
    }
    if (tokens_-- == burst_) refilled_ = now;  // the period runs from the first line it pays for
    return std::exchange(dropped_, 0);
}

uint64_t LineLimit::dropped() const {
    std::lock_guard lock(mutex_);
    return dropped_;
}

void LineLimit::emit(Level lvl, std::string line, uint64_t dropped_before,
                     std::source_location origin) {
    if (dropped_before > 0)
        line += " (" + std::to_string(dropped_before) + " more such lines were not logged)";
    ByteBudget& budget = budget_ != nullptr ? *budget_ : shared_line_budget();
    if (!budget.take(line.size() + kPrefixBytes, Clock::now())) {
        std::lock_guard lock(mutex_);
        dropped_ += 1 + dropped_before;
        g_dropped.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    log::write(lvl, line, origin);
}

bool ByteBudget::take(uint64_t bytes, LineLimit::Clock::time_point now) {
    std::lock_guard lock(mutex_);
    if (!started_) {
        started_ = true;
        bytes_ = burst_;
        refilled_ = now;
    } else if (now > refilled_) {
        const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now - refilled_);
        const uint64_t earned = static_cast<uint64_t>(ms.count()) * per_second_ / 1000;
        if (earned > 0) {
            bytes_ = std::min(burst_, bytes_ + earned);
            refilled_ = now;
        }
    }
    if (bytes > bytes_) return false;
    bytes_ -= bytes;
    return true;
}

ByteBudget& shared_line_budget() {
    static ByteBudget budget(kSharedBurst, kSharedPerSecond);
    return budget;
}

uint64_t lines_dropped() {
    return g_dropped.load(std::memory_order_relaxed);
}

}  // namespace ember::log
