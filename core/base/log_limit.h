// Log lines a guest can cause, limited. Whatever a guest does to its devices and ports (a queue
// size of 3 and DRIVER_OK in a loop, a ring index run ahead, a drive's errors), the log it makes
// ember write is bounded: each place that logs such a line holds a LineLimit, which lets a burst
// through and then one line a period, counts the lines it drops, and says in the next line it
// lets through how many it dropped. Every LineLimit of the process also draws on one shared budget
// of bytes, so a guest that trips many places at once is bounded too (log_limit.cc gives the
// figures: at most 35 KB in any 10 s, and 256 bytes a second after that).
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <source_location>
#include <string>

#include "core/base/log.h"

namespace ember::log {

class LineLimit {
  public:
    using Clock = std::chrono::steady_clock;
    static constexpr uint32_t kBurst = 10;
    static constexpr Clock::duration kPeriod = std::chrono::seconds(10);

    LineLimit() = default;
    // `budget`: the shared one the lines draw on; null: the process's (tests give their own).
    LineLimit(uint32_t burst, Clock::duration period, class ByteBudget* budget = nullptr)
        : burst_(burst), period_(period), budget_(budget) {}
    // Not copied with its owner: a copy starts afresh.
    LineLimit(const LineLimit& other)
        : burst_(other.burst_), period_(other.period_), budget_(other.budget_) {}
    LineLimit& operator=(const LineLimit& other) {
        if (this != &other) {
            burst_ = other.burst_;
            period_ = other.period_;
            budget_ = other.budget_;
        }
        return *this;
    }

    // Writes the line `make()` returns (called only if the line goes out) at `level`, if this
    // place's budget and the process's allow it now; else counts it as dropped. A line written
    // after drops ends with how many.
    template <typename MakeLine>
    void write(Level lvl, MakeLine&& make,
               std::source_location origin = std::source_location::current()) {
        if (lvl > level()) return;
        if (auto dropped = admit(Clock::now())) emit(lvl, make(), *dropped, origin);
    }
    template <typename MakeLine>
    void warn(MakeLine&& make, std::source_location origin = std::source_location::current()) {
        write(Level::Warn, std::forward<MakeLine>(make), origin);
    }

    // nullopt: the line is dropped (and counted); else how many were dropped before it. For
    // write() and tests; the process's shared budget is drawn on by emit(), not here.
    std::optional<uint64_t> admit(Clock::time_point now);
    // Lines dropped since the last one written.
    uint64_t dropped() const;

  private:
    void emit(Level lvl, std::string line, uint64_t dropped_before, std::source_location origin);

    uint32_t burst_ = kBurst;
    Clock::duration period_ = kPeriod;
    class ByteBudget* budget_ = nullptr;
    mutable std::mutex mutex_;
    bool started_ = false;
    uint32_t tokens_ = 0;
    Clock::time_point refilled_{};
    uint64_t dropped_ = 0;
};

// A budget of bytes: `burst` at once, refilled at `per_second`. Thread-safe.
class ByteBudget {
  public:
    ByteBudget(uint64_t burst, uint64_t per_second) : burst_(burst), per_second_(per_second) {}
    // True if `bytes` may be written now, and takes them.
    bool take(uint64_t bytes, LineLimit::Clock::time_point now);

  private:
    const uint64_t burst_, per_second_;
    std::mutex mutex_;
    bool started_ = false;
    uint64_t bytes_ = 0;
    LineLimit::Clock::time_point refilled_{};
};

// The one every LineLimit of the process draws on.
ByteBudget& shared_line_budget();

// Lines every LineLimit of the process has dropped so far: ember's last line says how many.
uint64_t lines_dropped();

}  // namespace ember::log
