// Arming a timerfd (CLOCK_MONOTONIC, relative): the rate limiters' wake-ups and the Controller's
// timers.
#pragma once

#include <sys/timerfd.h>

#include <chrono>
#include <ctime>

namespace ember {

// Fires once `after` from now and, with `every`, at that period after it; zero `after` disarms.
inline void arm_timer(int fd, std::chrono::nanoseconds after, std::chrono::nanoseconds every = {}) {
    auto spec = [](std::chrono::nanoseconds t) {
        return timespec{static_cast<time_t>(t.count() / 1'000'000'000),
                        static_cast<long>(t.count() % 1'000'000'000)};
    };
    const itimerspec when{spec(every), spec(after)};
    ::timerfd_settime(fd, 0, &when, nullptr);
}

}  // namespace ember
