#include "core/base/phase_times.h"

namespace ember {

std::string PhaseTimes::describe() const {
    using std::chrono::duration_cast;
    using std::chrono::microseconds;
    const auto at = duration_cast<microseconds>(origin_.time_since_epoch()).count();
    std::string line = "phases, us from ";
    line.append(from_).append(" (at ").append(std::to_string(at)).append(" on CLOCK_MONOTONIC):");
    for (size_t i = 0; i < steps_.size(); ++i)
        line.append(i ? ", " : " ")
            .append(steps_[i].name)
            .append(" ")
            .append(std::to_string(duration_cast<microseconds>(steps_[i].at - origin_).count()));
    return line;
}

}  // namespace ember
