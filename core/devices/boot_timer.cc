#include "core/devices/boot_timer.h"

#include <ctime>
#include <string>

#include "core/base/elapsed.h"
#include "core/base/log.h"

namespace ember {

uint64_t process_cpu_time_us() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000 + static_cast<uint64_t>(ts.tv_nsec) / 1000;
}

void BootTimer::read(uint64_t, std::span<uint8_t> data) {
    std::fill(data.begin(), data.end(), uint8_t{0});
}

void BootTimer::write(uint64_t offset, std::span<const uint8_t> data) {
    if (offset != 0 || data.empty() || data[0] != kMagic) return;
    const uint64_t wall_us = micros_since(start_);
    uint64_t cpu_us = process_cpu_time_us() - start_cpu_us_;
    lines_.write(log::Level::Info, [&] {
        return "Guest-boot-time = " + std::to_string(wall_us) + " us " +
               std::to_string(wall_us / 1000) + " ms, " + std::to_string(cpu_us) + " CPU us " +
               std::to_string(cpu_us / 1000) + " CPU ms";
    });
}

}  // namespace ember
