// Time since a moment on the steady clock: how ember times its steps (latencies in the metrics,
// the steps of a load in the log, the guest's boot time, the API's start).
#pragma once

#include <chrono>
#include <cstdint>

namespace ember {

inline std::chrono::microseconds elapsed_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() -
                                                                 start);
}

inline uint64_t micros_since(std::chrono::steady_clock::time_point start) {
    return static_cast<uint64_t>(elapsed_since(start).count());
}

}  // namespace ember
