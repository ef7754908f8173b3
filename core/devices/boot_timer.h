// Firecracker's boot-timer device, on the first MMIO slot with --boot-timer: the guest writes the
// magic byte 123 at offset 0 when it has booted, and ember logs the time since process start.
#pragma once

#include <chrono>
#include <cstdint>

#include "core/base/log_limit.h"
#include "core/devices/bus.h"

namespace ember {

class BootTimer : public BusDevice {
  public:
    static constexpr uint8_t kMagic = 123;

    // `process_start` and `process_start_cpu_us` are when the clock started: process start, or the
    // times a parent passed with --start-time-us / --start-time-cpu-us.
    BootTimer(std::chrono::steady_clock::time_point process_start, uint64_t process_start_cpu_us)
        : start_(process_start), start_cpu_us_(process_start_cpu_us) {}

    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<const uint8_t> data) override;

  private:
    std::chrono::steady_clock::time_point start_;
    uint64_t start_cpu_us_;
    log::LineLimit lines_;  // a guest may write the magic byte in a loop
};

uint64_t process_cpu_time_us();

}  // namespace ember
