// When each step of one VM's start or restore ended, for the log: perf/startup and perf/density
// read the line to say where a start's or a load's time goes. Marked on the VMM thread only.
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace ember {

class PhaseTimes {
  public:
    using Clock = std::chrono::steady_clock;

    // Steps are timed from `origin`, which `from` names ("main": when the process's main began).
    PhaseTimes(Clock::time_point origin, const char* from) : origin_(origin), from_(from) {}

    void mark(const char* step) { steps_.push_back({step, Clock::now()}); }
    // From now, which `from` names ("PUT /snapshot/load"), with no step yet.
    void restart(const char* from) {
        origin_ = Clock::now();
        from_ = from;
        steps_.clear();
    }

    // "phases, us from main (at 123456789 on CLOCK_MONOTONIC): seccomp filters 180, KVM VM 420"
    std::string describe() const;

  private:
    struct Step {
        const char* name;
        Clock::time_point at;
    };
    Clock::time_point origin_;
    const char* from_;
    std::vector<Step> steps_;
};

}  // namespace ember
